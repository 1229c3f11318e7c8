using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Operations;

/// <summary>API keys and rate limits on the in-process service (generated tiny model).</summary>
[Collection(TinyModelGroup.Name)]
public sealed class AccessTests(TinyModelFixture tiny)
{
    private static readonly Uri Info = new("/", UriKind.Relative);

    private Dictionary<string, string> Settings(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string> { ["MODEL_DIR"] = tiny.Directory, ["MODEL_AUTO_DOWNLOAD"] = "false" };
        foreach (var (key, value) in extra) settings[key] = value;
        return settings;
    }

    [Fact]
    public async Task Without_keys_every_endpoint_is_open()
    {
        await using var factory = new ServiceFactory(Settings());
        using var client = await factory.StartedClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Info)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task With_keys_every_endpoint_but_the_probes_and_the_page_needs_one()
    {
        await using var factory = new ServiceFactory(Settings(("API_KEYS", "alpha-key, beta-key")));
        using var client = await factory.StartedClientAsync();

        foreach (var path in new[] { "/", "/metrics", "/docs", "/openapi/v1.json", "/items/x" })
        {
            using var refused = await client.GetAsync(new Uri(path, UriKind.Relative));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.Contains("X-API-Key", await Detail(refused), StringComparison.Ordinal);
        }

        using (var text = await client.PostAsJsonAsync(new Uri("/embed-text", UriKind.Relative), new { text = "a red shoe" }))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, text.StatusCode);
        }

        foreach (var path in new[] { "/health", "/health/live", "/health/ready", "/ui/", "/ui/app.js" })
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(path, UriKind.Relative))).StatusCode);
        }
    }

    [Theory]
    [InlineData("Authorization", "Bearer alpha-key", HttpStatusCode.OK)]
    [InlineData("Authorization", "bearer beta-key", HttpStatusCode.OK)]
    [InlineData("X-API-Key", "beta-key", HttpStatusCode.OK)]
    [InlineData("Authorization", "Bearer wrong-key", HttpStatusCode.Unauthorized)]
    [InlineData("X-API-Key", "alpha-key ", HttpStatusCode.OK)]
    [InlineData("X-API-Key", "alpha", HttpStatusCode.Unauthorized)]
    [InlineData("X-API-Key", "", HttpStatusCode.Unauthorized)]
    [InlineData("Authorization", "Basic YWxwaGEta2V5Og==", HttpStatusCode.Unauthorized)]
    [InlineData("Authorization", "Bearer", HttpStatusCode.Unauthorized)]
    public async Task A_key_is_accepted_from_either_header(string header, string value, HttpStatusCode expected)
    {
        await using var factory = new ServiceFactory(Settings(("API_KEYS", "alpha-key,beta-key")));
        using var client = await factory.StartedClientAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, Info);
        request.Headers.TryAddWithoutValidation(header, value);
        using var response = await client.SendAsync(request);
        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.Unauthorized && value.Contains("-key", StringComparison.Ordinal))
        {
            // A refused key is never echoed.
            Assert.DoesNotContain(value.Split(' ')[^1], await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("alpha-key", "beta-key", HttpStatusCode.OK)]
    [InlineData("alpha-key", "wrong-key", HttpStatusCode.Unauthorized)]
    [InlineData("wrong-key", "alpha-key", HttpStatusCode.Unauthorized)]
    public async Task With_both_headers_both_keys_must_be_accepted(string bearer, string apiKey, HttpStatusCode expected)
    {
        await using var factory = new ServiceFactory(Settings(("API_KEYS", "alpha-key,beta-key")));
        using var client = await factory.StartedClientAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, Info);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        request.Headers.Add("X-API-Key", apiKey);
        using var response = await client.SendAsync(request);
        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.Unauthorized)
        {
            Assert.Contains("invalid_token", response.Headers.WwwAuthenticate.Single().Parameter, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Keys_come_from_a_file_and_are_read_again_when_it_changes()
    {
        using var directory = new TempDirectory("keys");
        var file = Path.Combine(directory.Path, "api-keys");
        await File.WriteAllTextAsync(file, "# rotated monthly\nfile-key-one\n\n  file-key-two  \n");
        await using var factory = new ServiceFactory(Settings(("API_KEYS_FILE", file)));
        using var client = await factory.StartedClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await Get(client, "file-key-one")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Get(client, "file-key-two")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Get(client, "# rotated monthly")).StatusCode);

        // A secret rotated in place: the new key works and the old one stops, without a restart.
        await File.WriteAllTextAsync(file, "file-key-three\n");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(5));
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Equal(HttpStatusCode.OK, (await Get(client, "file-key-three")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Get(client, "file-key-one")).StatusCode);
    }

    [Fact]
    public async Task A_missing_key_file_stops_the_start_with_its_name()
    {
        using var model = new TempDirectory("keys-model");
        var (exitCode, _, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly()], null,
            ("API_KEYS_FILE", "/nonexistent/api-keys"), ("MODEL_DIR", model.Path), ("MODEL_AUTO_DOWNLOAD", "false"),
            ("PORT", EndToEnd.ServiceProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(2, exitCode);
        Assert.Contains("API_KEYS_FILE '/nonexistent/api-keys' does not exist", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Past_the_rate_limit_a_key_gets_429_with_retry_after_and_the_probes_are_never_limited()
    {
        await using var factory = new ServiceFactory(Settings(("API_KEYS", "alpha-key,beta-key"), ("RATE_LIMIT_PER_MINUTE", "3")));
        using var client = await factory.StartedClientAsync();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Get(client, "alpha-key")).StatusCode);
        }

        using var limited = await Get(client, "alpha-key");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        var retryAfter = limited.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value.TotalSeconds, 1, 20);
        Assert.Contains("RATE_LIMIT_PER_MINUTE", await Detail(limited), StringComparison.Ordinal);

        // Another key has a bucket of its own; probes need neither a key nor tokens.
        Assert.Equal(HttpStatusCode.OK, (await Get(client, "beta-key")).StatusCode);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/health/ready", UriKind.Relative))).StatusCode);
        }
    }

    private static async Task<HttpResponseMessage> Get(HttpClient client, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Info);
        request.Headers.Add("X-API-Key", key);
        return await client.SendAsync(request);
    }

    private static async Task<string> Detail(HttpResponseMessage response)
    {
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("detail").GetString()!;
    }
}

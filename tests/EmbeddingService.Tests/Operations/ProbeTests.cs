using System.Net;
using System.Text.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Operations;

/// <summary>/health keeps the seed's shape; /health/live and /health/ready say what an orchestrator needs.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class ProbeTests(TinyModelFixture tiny)
{
    [Fact]
    public async Task A_ready_service_is_live_and_ready_and_health_keeps_the_seed_shape()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string> { ["MODEL_DIR"] = tiny.Directory, ["MODEL_AUTO_DOWNLOAD"] = "false" });
        using var client = await factory.StartedClientAsync();
        Assert.Equal("""{"status":"healthy","model_loaded":true,"device":"cpu"}""", await client.GetStringAsync(new Uri("/health", UriKind.Relative)));
        Assert.Equal("""{"status":"alive"}""", await client.GetStringAsync(new Uri("/health/live", UriKind.Relative)));
        using var ready = JsonDocument.Parse(await client.GetStringAsync(new Uri("/health/ready", UriKind.Relative)));
        Assert.Equal("ready", ready.RootElement.GetProperty("status").GetString());
        Assert.Equal(["model", "database", "shutdown"], ready.RootElement.GetProperty("checks").EnumerateObject().Select(c => c.Name));
    }

    [Fact]
    public async Task Without_a_model_the_service_is_live_but_not_ready_and_says_why()
    {
        using var empty = new TempDirectory("no-model");
        await using var factory = new ServiceFactory(new Dictionary<string, string> { ["MODEL_DIR"] = empty.Path, ["MODEL_AUTO_DOWNLOAD"] = "false" });
        using var client = await factory.StartedClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/health/live", UriKind.Relative))).StatusCode);
        using var ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        using var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
        Assert.Equal("not_ready", body.RootElement.GetProperty("status").GetString());
        Assert.Contains("The model failed to load", body.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("failing", body.RootElement.GetProperty("checks").GetProperty("model").GetProperty("status").GetString());
    }

    [Fact]
    public async Task An_unreachable_database_makes_the_service_not_ready()
    {
        var closedPort = ServiceProcess.FreePort();
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["DATABASE_URL"] = $"postgresql://nobody:nothing@127.0.0.1:{closedPort}/none",
        });
        using var client = await factory.StartedClientAsync();
        using var ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        using var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
        Assert.Equal("failing", body.RootElement.GetProperty("checks").GetProperty("database").GetProperty("status").GetString());
        Assert.Equal("ok", body.RootElement.GetProperty("checks").GetProperty("model").GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/health/live", UriKind.Relative))).StatusCode);
    }
}

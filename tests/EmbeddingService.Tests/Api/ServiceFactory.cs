using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmbeddingService.Tests.Api;

/// <summary>The real service in-process, configured through the same keys as its environment variables.</summary>
public sealed class ServiceFactory(IReadOnlyDictionary<string, string> settings) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }
    }

    /// <summary>A client, once /health no longer answers "loading" (the model is ready or has failed).</summary>
    public async Task<HttpClient> StartedClientAsync()
    {
        var client = CreateClient();
        for (var i = 0; i < 600; i++)
        {
            using var response = await client.GetAsync(new Uri("/health", UriKind.Relative));
            var health = await response.Content.ReadAsStringAsync();
            if (!health.Contains("\"status\":\"loading\"", StringComparison.Ordinal))
            {
                return client;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("The model did not finish loading within 30 s.");
    }

    /// <summary>A client once /health/ready says so: the model serves and, with storage on, the database answers.</summary>
    public async Task<HttpClient> ReadyClientAsync()
    {
        var client = await StartedClientAsync();
        for (var i = 0; i < 200; i++)
        {
            using var ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
            if (ready.IsSuccessStatusCode) return client;
            await Task.Delay(50);
        }

        throw new TimeoutException("The service did not become ready within 10 s: " + await client.GetStringAsync(new Uri("/health/ready", UriKind.Relative)));
    }

    public static MultipartFormDataContent Form(byte[] content, string field = "file", string fileName = "image.jpg")
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, field, fileName);
        return form;
    }
}

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

    public static MultipartFormDataContent Form(byte[] content, string field = "file", string fileName = "image.jpg")
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, field, fileName);
        return form;
    }
}

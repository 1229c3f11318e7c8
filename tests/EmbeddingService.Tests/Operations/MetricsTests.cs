using System.Net;
using System.Net.Http.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Operations;

/// <summary>/metrics in Prometheus' text format after real traffic (alone: its counts are exact).</summary>
[Collection(ProcessWideMeasurementGroup.Name)]
public sealed class MetricsTests(TinyModelFixture tiny)
{
    [Fact]
    public async Task Metrics_show_requests_inference_decoding_uploads_queues_refusals_and_the_model()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["API_KEYS"] = "metrics-key",
            ["RATE_LIMIT_PER_MINUTE"] = "8",
        });
        using var client = await factory.StartedClientAsync();
        client.DefaultRequestHeaders.Add("X-API-Key", "metrics-key");
        var png = CraftedPng();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), ServiceFactory.Form(png, fileName: "a.png"))).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync(new Uri("/embed-text", UriKind.Relative), new { text = "a red shoe" })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), ServiceFactory.Form([1, 2, 3]))).StatusCode);
        HttpStatusCode status;
        do
        {
            status = (await client.GetAsync(new Uri("/", UriKind.Relative))).StatusCode;
        }
        while (status == HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.TooManyRequests, status);

        // Scraping is never rate-limited, but it needs the key (METRICS_PUBLIC is off).
        using var anonymous = new HttpClient(factory.Server.CreateHandler()) { BaseAddress = client.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
        using var scrape = await client.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, scrape.StatusCode);
        Assert.StartsWith("text/plain", scrape.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        var metrics = await scrape.Content.ReadAsStringAsync();
        string[] expected =
        [
            """http_server_request_duration_seconds_count{otel_scope_name="Microsoft.AspNetCore.Hosting",http_request_method="POST",http_response_status_code="200",http_route="/embed-image",""",
            """http_server_request_duration_seconds_count{otel_scope_name="Microsoft.AspNetCore.Hosting",http_request_method="POST",http_response_status_code="400",http_route="/embed-image",""",
            """embedding_inference_batch_size_count{otel_scope_name="EmbeddingService",tower="vision"} 3""",
            """embedding_inference_batch_size_count{otel_scope_name="EmbeddingService",tower="text"} 1""",
            """embedding_inference_duration_seconds_bucket{otel_scope_name="EmbeddingService",tower="vision",le=""",
            """embedding_image_decode_duration_seconds_count{otel_scope_name="EmbeddingService",format="png"} 3""",
            """embedding_queue_depth{otel_scope_name="EmbeddingService",tower="vision"} 0""",
            """embedding_requests_refused_total{otel_scope_name="EmbeddingService",reason="rate_limited"} 1""",
            """embedding_model_loaded{otel_scope_name="EmbeddingService",dimension="512",model="CLIP-ViT-B/32"} 1""",
            "embedding_upload_received_bytes_total{",
        ];
        foreach (var line in expected)
        {
            Assert.Contains(line, metrics, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task With_metrics_public_prometheus_needs_no_key()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["API_KEYS"] = "metrics-key",
            ["METRICS_PUBLIC"] = "true",
        });
        using var client = await factory.StartedClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/metrics", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);
    }

    [DatabaseFact]
    public async Task With_storage_on_metrics_show_the_database_pool_and_query_durations()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["DATABASE_URL"] = database.Url,
        });
        using var client = await factory.ReadyClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync(new Uri("/items/red", UriKind.Relative), ServiceFactory.Form(CraftedPng()))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { text = "red" })).StatusCode);
        var metrics = await client.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("db_client_operation_duration_seconds_count{otel_scope_name=\"Npgsql\"", metrics, StringComparison.Ordinal);
        Assert.Contains("db_client_connection_count{otel_scope_name=\"Npgsql\"", metrics, StringComparison.Ordinal);
        Assert.Contains("db_client_connection_max{", metrics, StringComparison.Ordinal);
    }

    private static byte[] CraftedPng()
    {
        using var bitmap = new SkiaSharp.SKBitmap(64, 48);
        bitmap.Erase(new SkiaSharp.SKColor(200, 30, 40));
        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}

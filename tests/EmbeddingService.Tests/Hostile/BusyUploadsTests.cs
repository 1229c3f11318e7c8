using System.Net;
using System.Net.Sockets;
using System.Text;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Hostile;

/// <summary>While MAX_CONCURRENT_UPLOADS bodies are arriving, every route that takes a body says "busy, retry in 1 s".</summary>
[Collection(TinyModelGroup.Name)]
public sealed class BusyUploadsTests(TinyModelFixture tiny)
{
    [Fact]
    public async Task With_every_upload_slot_taken_each_body_route_answers_503_with_retry_after()
    {
        var port = ServiceProcess.FreePort();
        // With the test PostgreSQL the storage routes get as far as receiving their body; without it they are left out.
        await using var database = TestDatabase.ServerUrl is null ? null : await TestDatabase.CreateAsync();
        var settings = new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            ["MAX_CONCURRENT_UPLOADS"] = "1",
        };
        if (database is not null) settings["DATABASE_URL"] = database.Url;
        await using var service = await ServiceProcess.StartAsync(port, settings);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        while (database is not null && !(await http.GetStringAsync(new Uri("/health", UriKind.Relative))).Contains("\"database\":\"ok\"", StringComparison.Ordinal))
        {
            await Task.Delay(50);
        }

        // The one slot: a body that has begun and stalls.
        using var stalled = new TcpClient();
        await stalled.ConnectAsync(IPAddress.Loopback, port);
        await stalled.GetStream().WriteAsync(Encoding.ASCII.GetBytes(
            "POST /embed-text HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"text\": \""));
        await Task.Delay(500);

        var png = Convert.FromBase64String("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC");
        var requests = new (string Route, Func<HttpRequestMessage> Make)[]
        {
            ("POST /embed-text", () => Json(HttpMethod.Post, "/embed-text", "{\"text\": \"a red shoe\"}")),
            ("POST /v1/embeddings", () => Json(HttpMethod.Post, "/v1/embeddings", "{\"model\": \"clip\", \"input\": \"a red shoe\"}")),
            ("PUT /items/{id} (JSON)", () => Json(HttpMethod.Put, "/items/busy", $"{{\"vector\": [{string.Join(',', Enumerable.Repeat("0.0441941738", 512))}]}}")),
            ("POST /search (JSON)", () => Json(HttpMethod.Post, "/search", "{\"text\": \"a red shoe\"}")),
            ("POST /embed-image", () => new HttpRequestMessage(HttpMethod.Post, "/embed-image") { Content = Api.ServiceFactory.Form(png) }),
        };
        foreach (var (route, make) in requests.Where(r => database is not null || !r.Route.Contains("(JSON)", StringComparison.Ordinal)))
        {
            using var request = make();
            using var response = await http.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{route}: {(int)response.StatusCode}");
            Assert.True(response.Headers.RetryAfter?.Delta == TimeSpan.FromSeconds(1), $"{route}: Retry-After {response.Headers.RetryAfter}");
            Assert.Contains("MAX_CONCURRENT_UPLOADS", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    private static HttpRequestMessage Json(HttpMethod method, string path, string body) =>
        new(method, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
}

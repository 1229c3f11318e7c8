using System.Net.Http.Json;
using System.Text.Json;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Operations;

[Collection(TinyModelGroup.Name)]
public sealed class JsonLogTests(TinyModelFixture tiny)
{
    [Fact]
    public async Task With_log_format_json_every_line_is_a_json_object_and_request_lines_carry_trace_ids_but_no_key()
    {
        const string Key = "json-log-secret-key";
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "info",
            ["LOG_FORMAT"] = "json",
            ["API_KEYS"] = Key,
        });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        http.DefaultRequestHeaders.Add("X-API-Key", Key);
        (await http.PostAsJsonAsync(new Uri("/embed-text?secret=query", UriKind.Relative), new { text = "a private product description" })).EnsureSuccessStatusCode();
        await service.TerminateAsync();
        Assert.Equal(0, await service.WaitForExitAsync(TimeSpan.FromSeconds(20)));

        var lines = service.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length > 5, service.Log);
        var entries = lines.Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.All(entries, e => Assert.Equal(JsonValueKind.Object, e.ValueKind));
        var request = Assert.Single(entries, e => e.GetProperty("Category").GetString() == "EmbeddingService.Requests");
        Assert.Equal("/embed-text", request.GetProperty("State").GetProperty("Path").GetString());
        Assert.Equal(200, request.GetProperty("State").GetProperty("Status").GetInt32());
        Assert.Contains(request.GetProperty("Scopes").EnumerateArray(), s => s.TryGetProperty("TraceId", out var id) && id.GetString()!.Length == 32);
        Assert.DoesNotContain(Key, service.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("private product", service.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("secret=query", service.Log, StringComparison.Ordinal);
    }
}

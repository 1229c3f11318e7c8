using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EmbeddingService.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Api;

/// <summary>
/// Every route that takes a body, with each fault that can happen to it: the same fault gets the same status on every
/// route, in the route family's shape (problem+json, or OpenAI's error envelope on /v1/*), with Retry-After when it is
/// "not now", and the same refusal counted in <c>embedding_requests_refused_total{reason}</c>. "Not now" comes first: a
/// route that needs the model or the database and cannot have it answers 503 before it reads the body. A batch with
/// several faults is answered by the first in part order.
/// </summary>
public sealed class RouteFaultTests(ITestOutputHelper output)
{
    private enum Fault
    {
        BadImage,
        OversizedImage,
        BadJson,
        WrongShape,
        OversizedBody,
        ModelNotReady,
        DatabaseDown,
    }

    private sealed record Route(string Name, Func<Fault, HttpRequestMessage?> Make, bool OpenAi = false);

    private static readonly Dictionary<Fault, (HttpStatusCode Status, bool RetryAfter, string? Refusal)> Expected = new()
    {
        [Fault.BadImage] = (HttpStatusCode.BadRequest, false, null),
        [Fault.OversizedImage] = (HttpStatusCode.RequestEntityTooLarge, false, "image_too_large"),
        [Fault.BadJson] = (HttpStatusCode.BadRequest, false, null),
        [Fault.WrongShape] = (HttpStatusCode.UnprocessableEntity, false, null),
        [Fault.OversizedBody] = (HttpStatusCode.RequestEntityTooLarge, false, "upload_too_large"),
        [Fault.ModelNotReady] = (HttpStatusCode.ServiceUnavailable, true, "model_not_ready"),
        [Fault.DatabaseDown] = (HttpStatusCode.ServiceUnavailable, true, "database_unavailable"),
    };

    private static byte[] Image(Fault fault) => fault switch
    {
        Fault.BadImage => Encoding.UTF8.GetBytes("this is not an image"),
        Fault.OversizedImage => Fuzz.CraftedImages.PngHeader(100_000, 100_000),
        Fault.OversizedBody => new byte[3 * 1024 * 1024],
        _ => File.ReadAllBytes(SharedData.Image("chelsea.png")),
    };

    private static HttpRequestMessage Multipart(HttpMethod method, string path, string field, params byte[][] files)
    {
        var form = new MultipartFormDataContent();
        foreach (var file in files)
        {
            var part = new ByteArrayContent(file);
            part.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            form.Add(part, field, "a.png");
        }

        return new HttpRequestMessage(method, path) { Content = form };
    }

    private static HttpRequestMessage Json(HttpMethod method, string path, string json) =>
        new(method, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    private static string DataUri(byte[] image) => $"data:image/png;base64,{Convert.ToBase64String(image)}";

    private static string Vector() => "[" + string.Join(",", Enumerable.Range(0, 512).Select(i => i == 0 ? "1" : "0")) + "]";

    /// <summary>Each route's request for a fault, or null where the fault cannot happen to it.</summary>
    private static readonly Route[] Routes =
    [
        new("POST /embed-image", f => f switch
        {
            Fault.BadJson or Fault.DatabaseDown => null,
            Fault.WrongShape => Multipart(HttpMethod.Post, "/embed-image", "image", Image(f)),
            _ => Multipart(HttpMethod.Post, "/embed-image", "file", Image(f)),
        }),
        // A good image first: the bad one, second, decides.
        new("POST /embed-images", f => f switch
        {
            Fault.BadJson or Fault.DatabaseDown => null,
            Fault.WrongShape => Multipart(HttpMethod.Post, "/embed-images", "file", Image(f)),
            _ => Multipart(HttpMethod.Post, "/embed-images", "files", Image(Fault.ModelNotReady), Image(f)),
        }),
        new("POST /embed-text", f => f switch
        {
            Fault.BadJson => Json(HttpMethod.Post, "/embed-text", "{\"text\": "),
            Fault.WrongShape => Json(HttpMethod.Post, "/embed-text", "{\"texts\": 5}"),
            Fault.OversizedBody => Json(HttpMethod.Post, "/embed-text", "{\"text\": \"" + new string('a', 8 * 1024 * 1024) + "\"}"),
            Fault.ModelNotReady => Json(HttpMethod.Post, "/embed-text", "{\"text\": \"red shoes\"}"),
            _ => null,
        }),
        new("POST /v1/embeddings", f => f switch
        {
            Fault.BadJson => Json(HttpMethod.Post, "/v1/embeddings", "{\"input\": "),
            Fault.WrongShape => Json(HttpMethod.Post, "/v1/embeddings", "{\"input\": 5}"),
            Fault.OversizedBody => Json(HttpMethod.Post, "/v1/embeddings", "{\"input\": \"" + new string('a', 8 * 1024 * 1024) + "\"}"),
            Fault.DatabaseDown => null,
            // A good image first: the bad one, second, decides.
            _ => Json(HttpMethod.Post, "/v1/embeddings", $"{{\"input\": [{{\"type\": \"image_url\", \"image_url\": {{\"url\": \"{DataUri(Image(Fault.ModelNotReady))}\"}}}}, " +
                $"{{\"type\": \"image_url\", \"image_url\": {{\"url\": \"{DataUri(Image(f))}\"}}}}]}}"),
        }, OpenAi: true),
        new("PUT /items/{id} (image)", f => f switch
        {
            Fault.BadJson => null,
            Fault.WrongShape => Multipart(HttpMethod.Put, "/items/a", "image", Image(f)),
            _ => Multipart(HttpMethod.Put, "/items/a", "file", Image(f)),
        }),
        new("PUT /items/{id} (vector)", f => f switch
        {
            Fault.BadJson => Json(HttpMethod.Put, "/items/a", "{\"vector\": ["),
            Fault.WrongShape => Json(HttpMethod.Put, "/items/a", "{\"vector\": [1, 2]}"),
            Fault.OversizedBody => Json(HttpMethod.Put, "/items/a", "{\"vector\": " + Vector() + ", \"metadata\": {\"x\": \"" + new string('a', 8 * 1024 * 1024) + "\"}}"),
            Fault.DatabaseDown => Json(HttpMethod.Put, "/items/a", "{\"vector\": " + Vector() + "}"),
            _ => null,
        }),
        new("POST /search (photo)", f => f switch
        {
            Fault.BadJson => null,
            Fault.WrongShape => Multipart(HttpMethod.Post, "/search", "image", Image(f)),
            _ => Multipart(HttpMethod.Post, "/search", "file", Image(f)),
        }),
        new("POST /search (JSON)", f => f switch
        {
            Fault.BadJson => Json(HttpMethod.Post, "/search", "{\"text\": "),
            Fault.WrongShape => Json(HttpMethod.Post, "/search", "{\"text\": \"red shoes\", \"k\": 0}"),
            Fault.OversizedBody => Json(HttpMethod.Post, "/search", "{\"text\": \"" + new string('a', 8 * 1024 * 1024) + "\"}"),
            Fault.ModelNotReady => Json(HttpMethod.Post, "/search", "{\"text\": \"red shoes\"}"),
            Fault.DatabaseDown => Json(HttpMethod.Post, "/search", "{\"vector\": " + Vector() + "}"),
            _ => null,
        }),
    ];

    [DatabaseFact]
    public async Task The_same_fault_gets_the_same_status_and_shape_on_every_route()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var silentHub = new TcpListener(IPAddress.Loopback, 0);
        silentHub.Start();
        using var empty = new TempDirectory("fault-model");
        var limits = new Dictionary<string, string>
        {
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["MAX_UPLOAD_BYTES"] = "1000000",
            ["MAX_BATCH_UPLOAD_BYTES"] = "2000000",
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["DATABASE_URL"] = database.Url,
        };
        await using var ready = new ServiceFactory(limits);
        await using var loading = new ServiceFactory(new Dictionary<string, string>(limits)
        {
            ["MODEL_DIR"] = empty.Path,
            ["MODEL_AUTO_DOWNLOAD"] = "true",
            ["HF_ENDPOINT"] = $"http://127.0.0.1:{((IPEndPoint)silentHub.LocalEndpoint).Port}",
        });
        // A database that is not there: nothing listens on this port.
        await using var databaseDown = new ServiceFactory(new Dictionary<string, string>(limits)
        {
            ["DATABASE_URL"] = $"postgresql://postgres@127.0.0.1:{EndToEnd.ServiceProcess.FreePort()}/none",
        });
        using var readyClient = await ready.StartedClientAsync();
        using var loadingClient = loading.CreateClient();
        using var databaseDownClient = await databaseDown.StartedClientAsync();

        var table = new List<string>();
        var wrong = new List<string>();
        // Refusals counted by each service, read where they are counted (a listener on its own meter: /metrics would
        // mix in the other services of this test process).
        var expected = new Dictionary<HttpClient, Dictionary<string, long>> { [readyClient] = [], [loadingClient] = [], [databaseDownClient] = [] };
        var counted = new Dictionary<HttpClient, ConcurrentDictionary<string, long>> { [readyClient] = [], [loadingClient] = [], [databaseDownClient] = [] };
        using var listener = RefusalListener(new()
        {
            [ready.Services.GetRequiredService<IMeterFactory>()] = counted[readyClient],
            [loading.Services.GetRequiredService<IMeterFactory>()] = counted[loadingClient],
            [databaseDown.Services.GetRequiredService<IMeterFactory>()] = counted[databaseDownClient],
        });
        foreach (var fault in Enum.GetValues<Fault>())
        {
            foreach (var route in Routes)
            {
                using var request = route.Make(fault);
                if (request is null) continue;
                var client = fault switch { Fault.ModelNotReady => loadingClient, Fault.DatabaseDown => databaseDownClient, _ => readyClient };
                using var response = await client.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                var (status, retryAfter, refusal) = Expected[fault];
                if (refusal is not null) expected[client][refusal] = expected[client].GetValueOrDefault(refusal) + 1;
                var detail = Detail(body, route.OpenAi);
                var line = $"{route.Name} x {fault}: {(int)response.StatusCode}{(response.Headers.RetryAfter is null ? string.Empty : " + Retry-After")} \"{detail}\"";
                table.Add(line);
                if (response.StatusCode != status || (response.Headers.RetryAfter is not null) != retryAfter || string.IsNullOrWhiteSpace(detail)
                    || response.Content.Headers.ContentType?.MediaType != (route.OpenAi ? "application/json" : "application/problem+json"))
                {
                    wrong.Add($"{line} (expected {(int)status}{(retryAfter ? " + Retry-After" : string.Empty)}, {(route.OpenAi ? "OpenAI envelope" : "problem+json")}; got {response.Content.Headers.ContentType?.MediaType})");
                }
            }
        }

        output.WriteLine(string.Join('\n', table));
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));

        // Each refusal counted once, under the fault's reason, whichever route refused it (counted once the response is
        // done, so the last may still be on its way).
        foreach (var (client, wanted) in expected)
        {
            for (var tries = 0; tries < 50 && counted[client].Values.Sum() < wanted.Values.Sum(); tries++) await Task.Delay(100);
            Assert.Equal(wanted.OrderBy(e => e.Key), counted[client].OrderBy(e => e.Key));
        }
    }

    /// <summary>Counts embedding.requests.refused by reason for each service, told apart by the meter factory that made its meter.</summary>
    private static MeterListener RefusalListener(Dictionary<IMeterFactory, ConcurrentDictionary<string, long>> services)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "embedding.requests.refused" && instrument.Meter.Scope is IMeterFactory scope && services.TryGetValue(scope, out var counts))
                {
                    l.EnableMeasurementEvents(instrument, counts);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, state) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "reason") ((ConcurrentDictionary<string, long>)state!).AddOrUpdate((string)tag.Value!, value, (_, n) => n + value);
            }
        });
        listener.Start();
        return listener;
    }

    /// <summary>problem+json's "detail", or OpenAI's "error.message"; null when the body has neither.</summary>
    private static string? Detail(string body, bool openAi)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return openAi
                ? json.RootElement.GetProperty("error").GetProperty("message").GetString()
                : json.RootElement.GetProperty("detail").GetString();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }
}

/// <summary>/docs groups the routes by what a user does and documents every error status each route answers.</summary>
public sealed class ApiDocsTests
{
    [SharedDataFact]
    public async Task The_openapi_document_groups_routes_by_task_and_lists_their_error_statuses()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string> { ["MODEL_DIR"] = SharedData.ReferenceModel, ["MODEL_AUTO_DOWNLOAD"] = "false" });
        using var client = await factory.StartedClientAsync();
        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/openapi.json", UriKind.Relative)));
        var operations = document.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(op => (Route: $"{op.Name.ToUpperInvariant()} {path.Name}", Operation: op.Value)))
            .ToList();
        var tags = operations.SelectMany(o => o.Operation.GetProperty("tags").EnumerateArray().Select(t => t.GetString())).Distinct().Order().ToList();
        Assert.Equal(["Embeddings", "Operations", "Store and search"], tags);

        string[] Statuses(string route) => [.. operations.Single(o => o.Route == route).Operation.GetProperty("responses").EnumerateObject().Select(r => r.Name)];
        foreach (var route in new[] { "POST /embed-image", "POST /embed-images", "POST /embed-text", "POST /v1/embeddings", "PUT /items/{id}", "POST /search" })
        {
            Assert.Superset(new HashSet<string> { "200", "400", "408", "413", "503" }, Statuses(route).ToHashSet());
        }

        Assert.Contains("404", Statuses("GET /items/{id}"));
    }
}

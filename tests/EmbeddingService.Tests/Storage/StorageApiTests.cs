using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Storage;

/// <summary>Items and search against a real PostgreSQL with pgvector, through the service's HTTP API.</summary>
public sealed class StorageApiTests
{
    private static readonly string[] Photos = ["chelsea.png", "coffee.png", "astronaut.png", "camera.png", "coffee-progressive.jpg", "chelsea-exif6.jpg"];

    private static MultipartFormDataContent Photo(string name, string? metadata = null)
    {
        var form = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image(name)), fileName: name);
        if (metadata is not null) form.Add(new StringContent(metadata), "metadata");
        return form;
    }

    private static async Task<JsonDocument> Json(HttpResponseMessage response) => JsonDocument.Parse(await response.Content.ReadAsStringAsync());

    [DatabaseFact]
    public async Task Items_round_trip_with_metadata_thumbnail_pages_and_delete()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();

        var created = await client.PutAsync(new Uri("/items/cat", UriKind.Relative), Photo("chelsea.png", "{\"kind\":\"cat\",\"price\":12}"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/items/cat", created.Headers.Location?.OriginalString);
        var replaced = await client.PutAsync(new Uri("/items/cat", UriKind.Relative), Photo("chelsea.png", "{\"kind\":\"cat\",\"price\":10}"));
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);

        using var item = await Json(await client.GetAsync(new Uri("/items/cat", UriKind.Relative)));
        Assert.Equal(10, item.RootElement.GetProperty("metadata").GetProperty("price").GetInt32());
        Assert.Equal("fp32", item.RootElement.GetProperty("variant").GetString());
        Assert.Equal(64, item.RootElement.GetProperty("image_sha256").GetString()!.Length);
        Assert.False(item.RootElement.TryGetProperty("embedding", out _));

        // The stored vector is the one /embed-image gives for the same photo.
        using var withVector = await Json(await client.GetAsync(new Uri("/items/cat?include=embedding", UriKind.Relative)));
        using var direct = await Json(await client.PostAsync(new Uri("/embed-image", UriKind.Relative), Photo("chelsea.png")));
        float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];
        Assert.InRange(1 - Models.Cosine(Floats(direct.RootElement.GetProperty("embedding")), Floats(withVector.RootElement.GetProperty("embedding"))), -1e-6, 1e-6);

        var thumbnail = await client.GetAsync(new Uri("/items/cat/thumbnail", UriKind.Relative));
        Assert.Equal("image/jpeg", thumbnail.Content.Headers.ContentType?.MediaType);
        var etag = thumbnail.Headers.ETag!;
        using (var bitmap = SkiaSharp.SKBitmap.Decode(await thumbnail.Content.ReadAsByteArrayAsync()))
        {
            Assert.Equal(256, Math.Max(bitmap.Width, bitmap.Height));
        }

        using var conditional = new HttpRequestMessage(HttpMethod.Get, "/items/cat/thumbnail");
        conditional.Headers.IfNoneMatch.Add(etag);
        Assert.Equal(HttpStatusCode.NotModified, (await client.SendAsync(conditional)).StatusCode);

        for (var i = 0; i < 5; i++)
        {
            var vector = Enumerable.Range(0, 512).Select(j => (float)Math.Sin((i + 1) * (j + 1))).ToArray();
            Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(new Uri($"/items/v{i}", UriKind.Relative), new { vector, metadata = new { n = i } })).StatusCode);
        }

        var seen = new List<string>();
        string? after = null;
        do
        {
            using var page = await Json(await client.GetAsync(new Uri($"/items?limit=2{(after is null ? string.Empty : $"&after={Uri.EscapeDataString(after)}")}", UriKind.Relative)));
            seen.AddRange(page.RootElement.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetString()!));
            after = page.RootElement.GetProperty("next").GetString();
        }
        while (after is not null);
        Assert.Equal(["cat", "v0", "v1", "v2", "v3", "v4"], seen);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync(new Uri("/items/cat", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync(new Uri("/items/cat", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri("/items/cat", UriKind.Relative))).StatusCode);
    }

    [DatabaseFact]
    public async Task Search_by_photo_finds_it_first_and_more_like_this_excludes_the_item()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        foreach (var (photo, i) in Photos.Select((p, i) => (p, i)))
        {
            var metadata = $"{{\"name\":\"{photo}\",\"group\":\"{(i % 2 == 0 ? "even" : "odd")}\"}}";
            Assert.Equal(HttpStatusCode.Created, (await client.PutAsync(new Uri($"/items/{photo}", UriKind.Relative), Photo(photo, metadata))).StatusCode);
        }

        foreach (var photo in Photos)
        {
            using var form = Photo(photo);
            form.Add(new StringContent("3"), "k");
            using var found = await Json(await client.PostAsync(new Uri("/search", UriKind.Relative), form));
            var results = found.RootElement.GetProperty("results");
            Assert.Equal(3, results.GetArrayLength());
            Assert.Equal(photo, results[0].GetProperty("id").GetString());
            Assert.True(results[0].GetProperty("score").GetDouble() >= 0.9999, photo);
            Assert.True(results[0].GetProperty("score").GetDouble() >= results[1].GetProperty("score").GetDouble());
        }

        using var similar = await Json(await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { item_id = "coffee.png", k = 10 }));
        var ids = similar.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).ToList();
        Assert.Equal(Photos.Length - 1, ids.Count);
        Assert.DoesNotContain("coffee.png", ids);

        using var filtered = await Json(await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { text = "a cat", k = 10, filter = new { group = "odd" } }));
        var odd = filtered.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(3, odd.Count);
        Assert.All(odd, r => Assert.Equal("odd", r.GetProperty("metadata").GetProperty("group").GetString()));

        using var strict = await Json(await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { item_id = "coffee.png", min_score = 0.99 }));
        Assert.All(strict.RootElement.GetProperty("results").EnumerateArray(), r => Assert.True(r.GetProperty("score").GetDouble() >= 0.99));
    }

    [DatabaseFact]
    public async Task Bad_storage_requests_get_a_4xx_with_a_detail()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var vector = Enumerable.Repeat(0.1f, 512).ToArray();
        await client.PutAsJsonAsync(new Uri("/items/known", UriKind.Relative), new { vector });

        async Task Expect(HttpResponseMessage response, HttpStatusCode status, string detail)
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(status == response.StatusCode, $"{status} expected, got {response.StatusCode}: {body}");
            Assert.Contains(detail, body, StringComparison.Ordinal);
        }

        HttpResponseMessage Search(string json) => client.PostAsync(new Uri("/search", UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json")).Result;
        await Expect(await client.PutAsJsonAsync(new Uri("/items/a%01b", UriKind.Relative), new { vector }), HttpStatusCode.BadRequest, "control characters");
        await Expect(await client.PutAsJsonAsync(new Uri("/items/" + new string('x', 257), UriKind.Relative), new { vector }), HttpStatusCode.BadRequest, "1 to 256");
        await Expect(await client.PutAsync(new Uri("/items/m", UriKind.Relative), Photo("camera.png", "{not json")), HttpStatusCode.BadRequest, "metadata is not valid JSON");
        await Expect(await client.PutAsync(new Uri("/items/m", UriKind.Relative), Photo("camera.png", "[1,2]")), HttpStatusCode.UnprocessableEntity, "metadata must be a JSON object");
        await Expect(await client.PutAsJsonAsync(new Uri("/items/short", UriKind.Relative), new { vector = new float[10] }), HttpStatusCode.UnprocessableEntity, "512 numbers");
        // PostgreSQL's jsonb refuses \u0000, which JSON allows: a 400, not the database's error.
        await Expect(await client.PutAsync(new Uri("/items/m", UriKind.Relative), Photo("camera.png", "{\"a\": \"x\\u0000y\"}")), HttpStatusCode.BadRequest, "NUL");
        await Expect(Search("{\"text\": \"a\", \"filter\": {\"a\": \"\\u0000\"}}"), HttpStatusCode.BadRequest, "NUL");
        await Expect(Search("{\"vector\": [1, 2, 3]}"), HttpStatusCode.UnprocessableEntity, "512 numbers");
        await Expect(Search("{\"text\": \"a\", \"item_id\": \"known\"}"), HttpStatusCode.UnprocessableEntity, "exactly one query");
        await Expect(Search("{}"), HttpStatusCode.UnprocessableEntity, "needs one query");
        await Expect(Search("{\"text\": \"a\", \"k\": 0}"), HttpStatusCode.UnprocessableEntity, "k must be");
        await Expect(Search("{\"text\": \"a\", \"k\": 101}"), HttpStatusCode.UnprocessableEntity, "k must be");
        await Expect(Search("{\"text\": \"a\", \"filter\": [1]}"), HttpStatusCode.UnprocessableEntity, "filter must be a JSON object");
        await Expect(Search("{\"text\": \"a\", \"filter\": \"{bad\"}"), HttpStatusCode.BadRequest, "filter is not valid JSON");
        await Expect(Search("{\"text\": \"a\", \"min_score\": 2}"), HttpStatusCode.UnprocessableEntity, "min_score");
        await Expect(Search("{\"item_id\": \"unknown\"}"), HttpStatusCode.NotFound, "no item 'unknown'");
        await Expect(Search("{bad"), HttpStatusCode.BadRequest, "not valid JSON");
        await Expect(await client.GetAsync(new Uri("/items?limit=0", UriKind.Relative)), HttpStatusCode.UnprocessableEntity, "limit");
    }

    /// <summary>8 writers x 500 upserts over overlapping ids: every acknowledged write is there, nothing else, and a restart keeps it.</summary>
    [DatabaseFact]
    public async Task Concurrent_upserts_keep_every_acknowledged_write_across_a_restart()
    {
        await using var database = await TestDatabase.CreateAsync();
        var last = new System.Collections.Concurrent.ConcurrentDictionary<string, (int Writer, int Sequence)>();
        await using (var factory = new ServiceFactory(database.ServiceSettings()))
        {
            using var client = await factory.ReadyClientAsync();
            await Task.WhenAll(Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
            {
                for (var i = 0; i < 500; i++)
                {
                    var id = $"item-{(writer * 37 + i * 11) % 600}";
                    var vector = Enumerable.Range(0, 512).Select(j => (float)Math.Cos(j + writer + i)).ToArray();
                    var response = await client.PutAsJsonAsync(new Uri($"/items/{id}", UriKind.Relative), new { vector, metadata = new { writer, i } });
                    Assert.True(response.StatusCode is HttpStatusCode.Created or HttpStatusCode.OK, $"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    last.AddOrUpdate(id, (writer, i), (_, _) => (writer, i));
                }
            })));
        }

        Assert.Equal(last.Count, (int)await database.ScalarAsync<long>("SELECT count(*) FROM items"));

        // A new service on the same database sees every item.
        await using var restarted = new ServiceFactory(database.ServiceSettings());
        using var again = await restarted.ReadyClientAsync();
        var seen = 0;
        string? after = null;
        do
        {
            using var page = await Json(await again.GetAsync(new Uri($"/items?limit=1000{(after is null ? string.Empty : $"&after={after}")}", UriKind.Relative)));
            seen += page.RootElement.GetProperty("items").GetArrayLength();
            after = page.RootElement.GetProperty("next").GetString();
        }
        while (after is not null);
        Assert.Equal(last.Count, seen);
    }

    [SharedDataFact]
    public async Task Without_DATABASE_URL_storage_endpoints_answer_503_saying_how_to_enable_them()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string> { ["MODEL_DIR"] = SharedData.ReferenceModel, ["MODEL_AUTO_DOWNLOAD"] = "false" });
        using var client = await factory.StartedClientAsync();
        var response = await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { text = "a cat" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("DATABASE_URL", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync(new Uri("/items/x", UriKind.Relative))).StatusCode);
        Assert.DoesNotContain("database", await client.GetStringAsync(new Uri("/health", UriKind.Relative)), StringComparison.Ordinal);
    }

    /// <summary>A database holding another variant's vectors is refused at start, with a message saying why.</summary>
    [DatabaseFact]
    public async Task Start_refuses_a_database_of_another_variant()
    {
        await using var database = await TestDatabase.CreateAsync();
        await database.ExecuteAsync("CREATE TABLE store_info (key text PRIMARY KEY, value text NOT NULL); INSERT INTO store_info VALUES ('variant', 'quantized')");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Processes.ServiceAssembly()]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in database.ServiceSettings(("PORT", ServiceProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture)), ("HOST", "127.0.0.1")))
        {
            start.Environment[key] = value;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(3, process.ExitCode);
        Assert.Contains("variant 'quantized'", await output, StringComparison.Ordinal);
        Assert.Contains("ALLOW_MIXED_VARIANTS", await output, StringComparison.Ordinal);
    }
}

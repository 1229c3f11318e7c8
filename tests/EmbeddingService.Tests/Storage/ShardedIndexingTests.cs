using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using EmbeddingService.Indexing;
using EmbeddingService.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// <c>index --shard I/N</c> and <c>index --manifest</c> as users run them (processes, a real PostgreSQL, an image
/// server of the test's own on 127.0.0.1).
/// </summary>
public sealed partial class ShardedIndexingTests
{
    private static readonly string[] Photos = ["chelsea.png", "coffee.png", "astronaut.png", "camera.png", "coffee-progressive.jpg"];

    [Fact]
    public void A_shard_is_a_stable_hash_of_the_id_and_every_id_has_exactly_one()
    {
        var ids = Enumerable.Range(0, 3000).Select(i => $"sku-{i}").Append("ünïcødé/ｉｄ").ToArray();
        var shards = Enumerable.Range(0, 3).Select(i => new Shard(i, 3)).ToArray();
        foreach (var id in ids) Assert.Single(shards, s => s.Contains(id));
        // Roughly even, and fixed: the same split on every machine and run (XXH3-64 of the UTF-8, modulo N). The
        // pinned split is this implementation's own, recorded when shards were introduced: pods of different versions
        // working on one input must agree on it, so it must never change.
        Assert.All(shards, s => Assert.InRange(ids.Count(s.Contains), 900, 1100));
        Assert.Equal([1, 2, 0, 1, 2], new[] { "a", "b", "c", "sku-1", "sku-2" }.Select(id => shards.Single(s => s.Contains(id)).Index));
        Assert.Null(Shard.Parse("3/3", out var error));
        Assert.Contains("from 0 to N-1", error, StringComparison.Ordinal);
        Assert.Equal(new Shard(2, 4), Shard.Parse("2/4", out _));
    }

    [DatabaseFact]
    public async Task Three_shards_at_once_index_each_item_once_a_rerun_embeds_nothing_and_a_killed_shard_resumes()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var folder = new TempDirectory("catalog");
        for (var i = 0; i < 60; i++) File.Copy(SharedData.Image(Photos[i % Photos.Length]), folder.Combine($"{i:D3}-{Photos[i % Photos.Length]}"));

        var runs = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => IndexAsync(database.Url, folder.Path, "--shard", $"{i}/3")));
        var indexed = runs.Select(r => Indexed(r.Output)).ToArray();
        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.Output + r.Error));
        Assert.Equal(60, indexed.Sum());
        Assert.All(indexed, n => Assert.InRange(n, 1, 59));
        Assert.Equal(60L, await database.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.Contains($"shard 1/3: {indexed[1]} of the 60 entries read are this shard's", runs[1].Output, StringComparison.Ordinal);

        var again = await IndexAsync(database.Url, folder.Path, "--shard", "1/3");
        Assert.Contains($"indexed 0 (0 new, 0 replaced), skipped {indexed[1]} unchanged, failed 0", again.Output, StringComparison.Ordinal);

        // A shard killed mid-run (SIGKILL: no goodbye) keeps what it wrote; run again, it does only what it lacked.
        await database.ScalarAsync<long>("WITH gone AS (DELETE FROM items RETURNING 1) SELECT count(*) FROM gone");
        using (var killed = Start(database.Url, folder.Path, "--shard", "0/3", "--batch", "1"))
        {
            for (var i = 0; i < 1500 && await database.ScalarAsync<long>("SELECT count(*) FROM items") == 0; i++) await Task.Delay(20);
            killed.Kill(entireProcessTree: true);
            await killed.WaitForExitAsync();
        }

        var kept = await database.ScalarAsync<long>("SELECT count(*) FROM items");
        Assert.InRange(kept, 1, indexed[0]);
        var resumed = await IndexAsync(database.Url, folder.Path, "--shard", "0/3");
        Assert.Contains($"indexed {indexed[0] - kept} ({indexed[0] - kept} new, 0 replaced), skipped {kept} unchanged", resumed.Output, StringComparison.Ordinal);
        Assert.Equal((long)indexed[0], await database.ScalarAsync<long>("SELECT count(*) FROM items"));
    }

    [DatabaseFact]
    public async Task A_manifest_over_http_stores_every_good_image_and_names_each_bad_one_without_hanging()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ImageServer.StartAsync();
        using var folder = new TempDirectory("manifest");
        File.Copy(SharedData.Image("chelsea.png"), folder.Combine("local.png"));
        string Url(string path) => server.Address + path;
        var lines = new[]
        {
            $"{{\"id\": \"p1\", \"url\": \"{Url("/img/coffee.png")}\", \"metadata\": {{\"category\": \"drinks\"}}}}",
            $"{{\"id\": \"p2\", \"url\": \"{Url("/img/astronaut.png")}\"}}",
            $"{{\"id\": \"p3\", \"url\": \"{Url("/flaky/camera.png")}\"}}",
            $"{{\"id\": \"p4\", \"url\": \"{Url("/redirect/chelsea.png")}\"}}",
            "{\"id\": \"p5\", \"path\": \"local.png\"}",
            $"{{\"id\": \"missing\", \"url\": \"{Url("/missing.png")}\"}}",
            $"{{\"id\": \"big\", \"url\": \"{Url("/big.png")}\"}}",
            $"{{\"id\": \"stalled\", \"url\": \"{Url("/stall.png")}\"}}",
            $"{{\"id\": \"text\", \"url\": \"{Url("/text.png")}\"}}",
            $"{{\"id\": \"loop\", \"url\": \"{Url("/loop")}\"}}",
            "{\"id\": \"ftp\", \"url\": \"ftp://example.com/a.png\"}",
            "{\"id\": \"nothing\"}",
            "not json",
        };
        var manifest = folder.Combine("catalog.jsonl");
        await File.WriteAllLinesAsync(manifest, lines);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (exitCode, output, error) = await IndexAsync(database.Url, null, "--manifest", manifest, "--read-timeout", "1", "--retries", "1");
        Assert.True(exitCode == 1, $"exit {exitCode}\n{output}\n{error}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed}");
        Assert.Contains("indexed 5 (5 new, 0 replaced), skipped 0 unchanged, failed 8", output, StringComparison.Ordinal);
        Assert.Contains($"failed {Url("/missing.png")}: HTTP 404", output, StringComparison.Ordinal);
        Assert.Contains($"failed {Url("/big.png")}: the image is larger than the limit of 1,000,000 bytes (MAX_UPLOAD_BYTES)", output, StringComparison.Ordinal);
        Assert.Contains($"failed {Url("/stall.png")}: no answer within 1 s (the server stalled); tried 2 times", output, StringComparison.Ordinal);
        Assert.True(Regex.IsMatch(output, $"failed {Regex.Escape(Url("/text.png"))}: The file is not an image"), output);
        Assert.Contains($"failed {Url("/loop")}: HTTP 302: more than 5 redirects", output, StringComparison.Ordinal);
        Assert.Contains(":11: id 'ftp': \"url\" must be an absolute http:// or https:// URL", output, StringComparison.Ordinal);
        Assert.Contains(":12: id 'nothing': give either \"path\" or \"url\"", output, StringComparison.Ordinal);
        Assert.Contains(":13: not valid JSON", output, StringComparison.Ordinal);
        Assert.Equal(2, server.Hits("/flaky/camera.png"));
        Assert.Equal("drinks", await database.ScalarAsync<string>("SELECT metadata->>'category' FROM items WHERE id = 'p1'"));
        Assert.Equal(5L, await database.ScalarAsync<long>("SELECT count(*) FROM items"));

        // A rerun fetches no stored URL again; --recheck fetches them to compare.
        var before = server.Hits("/img/coffee.png");
        var again = await IndexAsync(database.Url, null, "--manifest", manifest, "--read-timeout", "1", "--retries", "0");
        Assert.Contains("indexed 0 (0 new, 0 replaced), skipped 5 unchanged", again.Output, StringComparison.Ordinal);
        Assert.Equal(before, server.Hits("/img/coffee.png"));
        var recheck = await IndexAsync(database.Url, null, "--manifest", manifest, "--read-timeout", "1", "--retries", "0", "--recheck");
        Assert.Contains("skipped 5 unchanged", recheck.Output, StringComparison.Ordinal);
        Assert.Equal(before + 1, server.Hits("/img/coffee.png"));
    }

    [DatabaseFact]
    public async Task A_manifest_read_from_a_url_names_its_images_relative_to_itself()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ImageServer.StartAsync();
        server.Manifest = "{\"id\": \"a\", \"path\": \"img/coffee.png\"}\n{\"id\": \"b\", \"path\": \"img/chelsea.png\", \"metadata\": {\"k\": 1}}\n";
        var (exitCode, output, error) = await IndexAsync(database.Url, null, "--manifest", server.Address + "/catalog/manifest.jsonl");
        Assert.True(exitCode == 0, $"exit {exitCode}\n{output}\n{error}");
        Assert.Contains("indexed 2 (2 new, 0 replaced)", output, StringComparison.Ordinal);

        var missing = await IndexAsync(database.Url, null, "--manifest", server.Address + "/nowhere.jsonl");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("The input cannot be read: The manifest", missing.Error, StringComparison.Ordinal);
    }

    private static int Indexed(string output) => int.Parse(IndexedLine().Match(output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"indexed (\d+) \(")]
    private static partial Regex IndexedLine();

    private static (string, string)[] Environment(string databaseUrl) =>
        [("DATABASE_URL", databaseUrl), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false"), ("MAX_UPLOAD_BYTES", "1000000")];

    private static Task<(int ExitCode, string Output, string Error)> IndexAsync(string databaseUrl, string? folder, params string[] arguments) =>
        Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", .. folder is null ? Array.Empty<string>() : [folder], .. arguments], null, Environment(databaseUrl));

    private static System.Diagnostics.Process Start(string databaseUrl, string folder, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet", [Processes.ServiceAssembly(), "index", folder, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in Environment(databaseUrl)) start.Environment[key] = value;
        var process = System.Diagnostics.Process.Start(start)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    /// <summary>Images over http on 127.0.0.1, with the faults a crawler meets: 404, too big, stalled, not an image, a redirect loop, a 503 once.</summary>
    private sealed class ImageServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentDictionary<string, int> _hits = new();

        private ImageServer(WebApplication app) => _app = app;

        public string Address { get; private set; } = string.Empty;

        public string Manifest { get; set; } = string.Empty;

        public int Hits(string path) => _hits.GetValueOrDefault(path);

        public static async Task<ImageServer> StartAsync()
        {
            ImageServer? server = null;
            var (_, address) = await LocalWebServer.StartAsync(app => (server = new ImageServer(app)).Map(app));
            server!.Address = address;
            return server;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();

        private void Map(WebApplication app)
        {
            app.Use(async (context, next) =>
            {
                _hits.AddOrUpdate(context.Request.Path.Value!, 1, (_, n) => n + 1);
                await next(context);
            });
            app.MapGet("/img/{name}", (string name) => Results.File(File.ReadAllBytes(SharedData.Image(name)), "image/png"));
            app.MapGet("/catalog/img/{name}", (string name) => Results.File(File.ReadAllBytes(SharedData.Image(name)), "image/png"));
            app.MapGet("/catalog/manifest.jsonl", () => Results.Text(Manifest, "application/jsonl"));
            app.MapGet("/flaky/{name}", (string name) => Hits($"/flaky/{name}") == 1
                ? Results.StatusCode(503)
                : Results.File(File.ReadAllBytes(SharedData.Image(name)), "image/png"));
            app.MapGet("/redirect/{name}", (string name) => Results.Redirect($"/img/{name}"));
            // Chunked, without a Content-Length: the bound holds while reading, not only from the headers.
            app.MapGet("/big.png", async (HttpContext context) =>
            {
                context.Response.ContentType = "image/png";
                for (var i = 0; i < 30; i++) await context.Response.Body.WriteAsync(new byte[50_000]);
            });
            app.MapGet("/text.png", () => Results.Text("hello, not an image", "image/png"));
            app.MapGet("/loop", () => Results.Redirect("/loop"));
            app.MapGet("/stall.png", async (HttpContext context) =>
            {
                context.Response.ContentType = "image/png";
                await context.Response.Body.WriteAsync(new byte[] { 0x89, 0x50, 0x4E, 0x47 });
                await context.Response.Body.FlushAsync();
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            });
        }
    }
}

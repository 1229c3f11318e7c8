using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace EmbeddingService.Bench;

/// <summary>
/// The store at N items (<c>--storage --items N</c>): <c>import</c> from another database's table and from JSON lines
/// (rates before the index build, and the build), then searches over HTTP through a service whose reads go to a
/// streaming standby (scripts/postgres.sh pair), unfiltered and with filters of 0.1 %, 1 % and 10 %, against the exact
/// answer computed here: results returned, recall@10, p50/p95.
/// </summary>
internal static class StoreScaleBench
{
    private const int JsonLines = 200_000;

    public static async Task RunAsync(BenchOptions options, string modelDirectory, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var server = Environment.GetEnvironmentVariable("BENCH_DATABASE_URL") ?? throw new InvalidOperationException("BENCH_DATABASE_URL is not set.");
        var catalogue = Catalogue.Generate(options.Items);
        var pair = (await BenchProcess.RunAsync("bash", [Path.Combine(options.RepositoryRoot, "scripts", "postgres.sh"), "pair", "start"], [])).Output
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var primary = pair[0][..pair[0].LastIndexOf('/')] + "/bench_scale";
        var standby = pair[1][..pair[1].LastIndexOf('/')] + "/bench_scale";
        if (!BenchOptions.ReuseStore)
        {
            primary = await StorageBench.CreateDatabaseAsync(pair[0], "bench_scale");
            await ImportAsync(options, server, primary, catalogue, report);
        }

        await SearchAsync(options, modelDirectory, settings, report, catalogue, primary, standby, pair[0]);
    }

    private static async Task ImportAsync(BenchOptions options, string server, string primary, Catalogue catalogue, Report report)
    {
        var source = await StorageBench.CreateDatabaseAsync(server, "bench_source");
        var jsonTarget = await StorageBench.CreateDatabaseAsync(server, "bench_jsonl");
        await FillSourceAsync(source, catalogue);
        var service = Path.Combine(options.RepositoryRoot, "src", "EmbeddingService", "bin", "Release", "net10.0", "EmbeddingService.dll");
        var fromTable = await BenchProcess.RunAsync("dotnet", [service, "import", "--from-database", source, "--query", "SELECT id, embedding, metadata FROM products"],
            [("DATABASE_URL", primary), ("INDEX_BUILD_MEMORY_MB", "4096")]);
        report.Add($"import --from-database, {catalogue.Count:N0} vectors into an empty store (binary COPY, then the indexes)", Rate(fromTable.Output), "", "", "",
            Summary(fromTable.Output));

        using (var folder = new TemporaryFile())
        {
            await WriteJsonLinesAsync(folder.Path, catalogue, Math.Min(JsonLines, catalogue.Count));
            var fromFile = await BenchProcess.RunAsync("dotnet", [service, "import", folder.Path], [("DATABASE_URL", jsonTarget), ("INDEX_BUILD_MEMORY_MB", "4096")]);
            report.Add($"import FILE.jsonl, {Math.Min(JsonLines, catalogue.Count):N0} lines of 512 numbers into an empty store", Rate(fromFile.Output), "", "", "",
                Summary(fromFile.Output));
        }
    }

    private static async Task SearchAsync(BenchOptions options, string modelDirectory, IReadOnlyDictionary<string, string> settings, Report report, Catalogue catalogue,
        string primary, string standby, string primaryServer)
    {
        // A store in service holds its table and indexes in memory: load them into the standby's buffers (pg_prewarm,
        // created on the primary and replayed), so the figures are of searching, not of the first reads from disk.
        await using (var primaryStore = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = primary }.ConnectionString()))
        {
            await StorageBench.Execute(primaryStore, "CREATE EXTENSION IF NOT EXISTS pg_prewarm");
        }

        await WaitForReplayAsync(primaryServer, standby);
        await using (var standbyStore = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = standby }.ConnectionString()))
        {
            await StorageBench.Execute(standbyStore, "SELECT pg_prewarm('items'), pg_prewarm('items_embedding'), pg_prewarm('items_metadata'), pg_prewarm('items_pkey')");
        }

        await using var running = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory,
            new Dictionary<string, string>(settings) { ["DATABASE_URL"] = primary, ["DATABASE_READ_URL"] = standby });
        using var http = new HttpClient { BaseAddress = running.Address };
        for (var i = 0; i < 600 && !(await http.GetStringAsync(new Uri("/health", UriKind.Relative))).Contains("\"database_replica\":\"ok\"", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
        }

        var random = new Random(13);
        var queries = Enumerable.Range(0, options.Queries).Select(_ => random.Next(catalogue.Count)).Select(i => (Item: i, Vector: catalogue.Query(i, random))).ToArray();
        (string Name, Func<int, string?> Filter, Func<int, int, bool> Matches)[] filters =
        [
            ("no filter", _ => null, (_, _) => true),
            ("own brand (0.1 %)", q => $"{{\"brand\": \"b{catalogue.Brand(q)}\"}}", (q, i) => catalogue.Brand(i) == catalogue.Brand(q)),
            ("own category (1 %)", q => $"{{\"category\": \"c{catalogue.Category(q)}\"}}", (q, i) => catalogue.Category(i) == catalogue.Category(q)),
            ("unrelated colour (10 %)", q => $"{{\"colour\": \"k{catalogue.Colour[q]}\"}}", (q, i) => catalogue.Colour[i] == catalogue.Colour[q]),
            ("unrelated shelf (0.1 %)", q => $"{{\"shelf\": \"s{catalogue.Shelf[q]}\"}}", (q, i) => catalogue.Shelf[i] == catalogue.Shelf[q]),
        ];
        // The service's own warm-up (JIT, connection pool): a few searches of each kind, not measured.
        foreach (var (_, filter, _) in filters)
        {
            foreach (var (item, vector) in queries.Take(10))
            {
                var json = filter(item);
                using var warm = await http.PostAsJsonAsync(new Uri("/search", UriKind.Relative),
                    json is null ? (object)new { vector, k = 10 } : new { vector, k = 10, filter = JsonDocument.Parse(json).RootElement });
            }
        }

        foreach (var (name, filter, matches) in filters)
        {
            var latencies = new List<double>();
            double recall = 0;
            var shortAnswers = 0;
            foreach (var (item, vector) in queries)
            {
                var json = filter(item);
                var body = json is null ? (object)new { vector, k = 10 } : new { vector, k = 10, filter = JsonDocument.Parse(json).RootElement };
                var timer = Stopwatch.StartNew();
                using var response = await http.PostAsJsonAsync(new Uri("/search", UriKind.Relative), body);
                var text = await response.Content.ReadAsStringAsync();
                latencies.Add(timer.Elapsed.TotalMilliseconds);
                var found = JsonDocument.Parse(text).RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()!).ToHashSet();
                var exact = catalogue.Exact(vector, i => matches(item, i));
                recall += exact.Count(e => found.Contains(Catalogue.Id(e))) / (double)exact.Count;
                if (found.Count < exact.Count) shortAnswers++;
            }

            latencies.Sort();
            report.Add($"POST /search {{\"vector\"}}, k=10, {catalogue.Count:N0} items, {name}, reads from the standby (prewarmed), 1 client",
                Report.F(1000 / latencies.Average()), Report.F(latencies[latencies.Count / 2]), Report.F(latencies[(int)(latencies.Count * 0.95)]),
                Report.F(latencies[(int)(latencies.Count * 0.99)]), $"recall@10 {Report.F(recall / queries.Length, 3)}; fewer than k returned: {shortAnswers} of {queries.Length}");
        }
    }

    /// <summary>
    /// The source table imports read: <c>products (id, embedding, metadata)</c>, and with <paramref name="words"/> each
    /// item's product and text too (binary COPY).
    /// </summary>
    internal static async Task FillSourceAsync(string url, Catalogue catalogue, Func<int, (string Product, string Text)>? words = null)
    {
        await using (var plain = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = url }.ConnectionString()))
        {
            await StorageBench.Execute(plain, "CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE products (id text, embedding vector(512), metadata jsonb, product text, text text)");
        }

        var builder = new NpgsqlDataSourceBuilder(new Storage.StorageOptions { DatabaseUrl = url }.ConnectionString());
        builder.UseVector();
        await using var dataSource = builder.Build();
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var import = await connection.BeginBinaryImportAsync("COPY products (id, embedding, metadata, product, text) FROM STDIN (FORMAT BINARY)");
        for (var i = 0; i < catalogue.Count; i++)
        {
            await import.StartRowAsync();
            await import.WriteAsync(Catalogue.Id(i), NpgsqlDbType.Text);
            await import.WriteAsync(new Vector(catalogue.Vector(i).ToArray()));
            await import.WriteAsync(catalogue.MetadataJson(i), NpgsqlDbType.Jsonb);
            if (words?.Invoke(i) is { } given)
            {
                await import.WriteAsync(given.Product, NpgsqlDbType.Text);
                await import.WriteAsync(given.Text, NpgsqlDbType.Text);
            }
            else
            {
                await import.WriteNullAsync();
                await import.WriteNullAsync();
            }
        }

        await import.CompleteAsync();
    }

    private static async Task WriteJsonLinesAsync(string path, Catalogue catalogue, int count)
    {
        await using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        var line = new StringBuilder(8192);
        for (var i = 0; i < count; i++)
        {
            line.Clear().Append("{\"id\": \"").Append(Catalogue.Id(i)).Append("\", \"embedding\": [");
            var vector = catalogue.Vector(i);
            for (var d = 0; d < vector.Length; d++)
            {
                if (d > 0) line.Append(',');
                line.Append(vector[d].ToString("R", CultureInfo.InvariantCulture));
            }

            line.Append("], \"metadata\": ").Append(catalogue.MetadataJson(i)).Append('}');
            await writer.WriteLineAsync(line);
        }
    }

    private static async Task WaitForReplayAsync(string primaryServer, string standby)
    {
        await using var primary = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = primaryServer }.ConnectionString());
        await using var replica = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = standby }.ConnectionString());
        await using var at = primary.CreateCommand("SELECT pg_current_wal_lsn()::text");
        var lsn = (string)(await at.ExecuteScalarAsync())!;
        for (var i = 0; i < 6000; i++)
        {
            await using var replayed = replica.CreateCommand($"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
            if (await replayed.ExecuteScalarAsync() is true) return;
            await Task.Delay(100);
        }
    }

    /// <summary>The "N vectors/s" of an import's summary line.</summary>
    private static string Rate(string output) =>
        Summary(output).Split(", ").FirstOrDefault(p => p.Contains("vectors/s", StringComparison.Ordinal))?.Split(' ')[0] ?? "?";

    private static string Summary(string output) => output.Split('\n').FirstOrDefault(l => l.StartsWith("imported ", StringComparison.Ordinal))?.Trim() ?? output.Trim();

    private sealed class TemporaryFile : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.jsonl");

        public void Dispose() => File.Delete(Path);
    }
}

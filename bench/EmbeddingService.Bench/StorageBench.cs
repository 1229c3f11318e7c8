using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using EmbeddingService.Storage;
using Npgsql;
using Pgvector;
using SkiaSharp;

namespace EmbeddingService.Bench;

/// <summary>The vector store: indexer throughput against the service's, and search latency and recall at 100,000 vectors.</summary>
internal static class StorageBench
{
    public static async Task RunAsync(BenchOptions options, string modelDirectory, byte[] phone, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var server = Environment.GetEnvironmentVariable("BENCH_DATABASE_URL")
            ?? throw new InvalidOperationException("BENCH_DATABASE_URL is not set (scripts/bench.sh starts PostgreSQL and sets it).");
        var indexDatabase = await CreateDatabaseAsync(server, "bench_index");
        var searchDatabase = await CreateDatabaseAsync(server, "bench_search");

        // Indexer: 240 distinct 640x480 JPEGs cut from the 12-megapixel photo.
        using var folder = new TemporaryFolder();
        await WritePhotosAsync(phone, folder.Path, 240);

        var (_, _, summary) = await IndexingBench.IndexAsync(options, modelDirectory, settings, indexDatabase, [[folder.Path]]);
        // The summary's own rate: from the first image to the last, the model's load apart.
        var indexRate = double.Parse(summary.Split(", ")[^1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        await using (var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, settings))
        {
            var jpeg = await File.ReadAllBytesAsync(Path.Combine(folder.Path, "p000.jpg"));
            await HttpLoad.RunAsync(service.Address, jpeg, 8, 1.5);
            var eight = await HttpLoad.RunAsync(service.Address, jpeg, 8, options.Seconds);
            report.Add("indexer, 240 JPEGs 640x480 (index command, default batch) / service 8 clients", $"{Report.F(indexRate)} / {Report.F(eight.ImagesPerSecond)}", "", "", "",
                $"ratio {Report.F(indexRate / eight.ImagesPerSecond, 2)} (target >= 0.9); {summary}");
        }

        await SearchAsync(options, modelDirectory, searchDatabase, settings, report);
    }

    private static async Task SearchAsync(BenchOptions options, string modelDirectory, string database, IReadOnlyDictionary<string, string> settings, Report report)
    {
        // The service creates the schema; the rows are bulk-loaded before the HNSW index is built, as for any large load.
        await using (var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, new Dictionary<string, string>(settings) { ["DATABASE_URL"] = database }))
        {
            await WaitForStorageAsync(service.Address);
        }

        var connectionString = new StorageOptions { DatabaseUrl = database }.ConnectionString();
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.UseVector();
        await using var dataSource = builder.Build();
        foreach (var (name, sample) in Distributions())
        {
            await LoadAsync(dataSource, name, sample, report);
            await using var searching = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, new Dictionary<string, string>(settings) { ["DATABASE_URL"] = database });
            await WaitForStorageAsync(searching.Address);
            await QueryAsync(searching.Address, dataSource, name, sample, report);
        }
    }

    private const int Count = 100_000;

    /// <summary>
    /// Two shapes of 100,000 unit vectors. Flat: 1,000 random centres with noise of norm ~0.9 (beyond a point's own
    /// cluster every other point is at nearly the same distance). Hierarchical, closer to a catalogue (categories,
    /// products, photos): 100 centres, 10 products around each, 100 photos around each product.
    /// </summary>
    private static IEnumerable<(string Name, Func<Random, int, float[]> Sample)> Distributions()
    {
        var random = new Random(7);
        var flat = Enumerable.Range(0, 1000).Select(_ => Unit(Gaussian(random, 512, 1.0))).ToArray();
        yield return ("flat clusters", (r, i) => Unit(Add(flat[r.Next(flat.Length)], Gaussian(r, 512, 0.04))));
        var categories = Enumerable.Range(0, 100).Select(_ => Unit(Gaussian(random, 512, 1.0))).ToArray();
        var products = categories.SelectMany(c => Enumerable.Range(0, 10).Select(_ => Unit(Add(c, Gaussian(random, 512, 0.03))))).ToArray();
        yield return ("hierarchical clusters", (r, i) => Unit(Add(products[r.Next(products.Length)], Gaussian(r, 512, 0.02))));
    }

    private static async Task LoadAsync(NpgsqlDataSource dataSource, string name, Func<Random, int, float[]> sample, Report report)
    {
        var random = new Random(11);
        var clock = Stopwatch.StartNew();
        await Execute(dataSource, "DROP INDEX IF EXISTS items_embedding; TRUNCATE items");
        await using (var connection = await dataSource.OpenConnectionAsync())
        await using (var import = await connection.BeginBinaryImportAsync("COPY items (id, embedding, model, variant, metadata) FROM STDIN (FORMAT BINARY)"))
        {
            for (var i = 0; i < Count; i++)
            {
                await import.StartRowAsync();
                await import.WriteAsync($"v{i:D6}", NpgsqlTypes.NpgsqlDbType.Text);
                await import.WriteAsync(new Vector(sample(random, i)));
                await import.WriteAsync("CLIP-ViT-B/32", NpgsqlTypes.NpgsqlDbType.Text);
                await import.WriteAsync("fp32", NpgsqlTypes.NpgsqlDbType.Text);
                await import.WriteAsync($"{{\"category\": \"c{i % 20}\"}}", NpgsqlTypes.NpgsqlDbType.Jsonb);
            }

            await import.CompleteAsync();
        }

        var loaded = clock.Elapsed.TotalSeconds;
        await Execute(dataSource, "SET maintenance_work_mem = '1GB'; CREATE INDEX items_embedding ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64); ANALYZE items");
        report.Add($"store {Count:N0} vectors, {name} (binary COPY, then HNSW m=16 ef_construction=64)", Report.F(Count / loaded, 0), "", "", "",
            $"COPY {Report.F(loaded, 1)} s, index build {Report.F(clock.Elapsed.TotalSeconds - loaded, 1)} s");
    }

    private static async Task QueryAsync(Uri service, NpgsqlDataSource dataSource, string name, Func<Random, int, float[]> sample, Report report)
    {
        var random = new Random(13);
        using var http = new HttpClient { BaseAddress = service };
        var queries = Enumerable.Range(0, 300).Select(i => sample(random, i)).ToArray();
        foreach (var filter in new[] { (object?)null, new { category = "c3" } })
        {
            var latencies = new List<double>();
            double recall = 0, distanceRatio = 0;
            for (var q = 0; q < queries.Length; q++)
            {
                var body = filter is null ? (object)new { vector = queries[q], k = 10 } : new { vector = queries[q], k = 10, filter };
                var timer = Stopwatch.StartNew();
                using var response = await http.PostAsJsonAsync(new Uri("/search", UriKind.Relative), body);
                var text = await response.Content.ReadAsStringAsync();
                latencies.Add(timer.Elapsed.TotalMilliseconds);
                var results = JsonDocument.Parse(text).RootElement.GetProperty("results").EnumerateArray()
                    .Select(r => (Id: r.GetProperty("id").GetString()!, Score: r.GetProperty("score").GetDouble())).ToList();
                if (q < 100)
                {
                    var exact = await ExactAsync(dataSource, queries[q], filter is null ? null : "{\"category\": \"c3\"}");
                    recall += exact.Count(e => results.Any(r => r.Id == e.Id)) / (double)exact.Count;
                    // How much farther the k-th result is than the true k-th: near 1 means the misses were near-ties.
                    distanceRatio += (1 - results[^1].Score) / (1 - exact[^1].Score);
                }
            }

            latencies.Sort();
            report.Add($"POST /search {{\"vector\"}}, k=10, {Count:N0} vectors, {name}{(filter is null ? string.Empty : ", filter 1 in 20")}, 1 client",
                Report.F(1000 / latencies.Average()), Report.F(latencies[latencies.Count / 2]), Report.F(latencies[(int)(latencies.Count * 0.95)]),
                Report.F(latencies[(int)(latencies.Count * 0.99)]),
                $"recall@10 vs exact {Report.F(recall / 100, 3)}; 10th result's distance / exact 10th {Report.F(distanceRatio / 100, 4)}");
        }
    }

    private static async Task<List<(string Id, double Score)>> ExactAsync(NpgsqlDataSource dataSource, float[] query, string? filter)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var off = new NpgsqlCommand("SET LOCAL enable_indexscan = off", connection, transaction)) await off.ExecuteNonQueryAsync();
        await using var command = new NpgsqlCommand(
            "SELECT id, 1 - (embedding <=> @query) FROM items WHERE (@filter::jsonb IS NULL OR metadata @> @filter::jsonb) ORDER BY embedding <=> @query LIMIT 10",
            connection, transaction);
        command.Parameters.AddWithValue("query", new Vector(query));
        command.Parameters.AddWithValue("filter", NpgsqlTypes.NpgsqlDbType.Jsonb, (object?)filter ?? DBNull.Value);
        var found = new List<(string, double)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) found.Add((reader.GetString(0), reader.GetDouble(1)));
        return found;
    }

    private static async Task WaitForStorageAsync(Uri service)
    {
        using var http = new HttpClient { BaseAddress = service };
        for (var i = 0; i < 600 && !(await http.GetStringAsync(new Uri("/health", UriKind.Relative))).Contains("\"database\":\"ok\"", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
        }
    }

    internal static async Task<string> CreateDatabaseAsync(string server, string name)
    {
        await using (var admin = NpgsqlDataSource.Create(new StorageOptions { DatabaseUrl = server }.ConnectionString()))
        {
            await Execute(admin, $"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            await Execute(admin, $"CREATE DATABASE {name}");
        }

        return server[..server.LastIndexOf('/')] + "/" + name;
    }

    internal static async Task Execute(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 0;
        await command.ExecuteNonQueryAsync();
    }

    private static float[] Gaussian(Random random, int length, double std) =>
        [.. Enumerable.Range(0, length).Select(_ => (float)(std * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())))];

    private static float[] Add(float[] a, float[] b) => [.. a.Zip(b, (x, y) => x + y)];

    private static float[] Unit(float[] vector)
    {
        var norm = (float)Math.Sqrt(vector.Sum(v => (double)v * v));
        return [.. vector.Select(v => v / norm)];
    }

    /// <summary>Distinct 640x480 JPEGs (p000.jpg, ...) cut from the 12-megapixel photo, as a catalogue's photos are.</summary>
    public static async Task WritePhotosAsync(byte[] phone, string folder, int count)
    {
        using var original = SKBitmap.Decode(phone);
        for (var i = 0; i < count; i++)
        {
            var x = i % 16 * 180;
            var y = i / 16 % 15 * 120;
            using var crop = new SKBitmap(1280, 960);
            original.ExtractSubset(crop, new SKRectI(x, y, x + 1280, y + 960));
            using var small = crop.Resize(new SKImageInfo(640, 480), new SKSamplingOptions(SKCubicResampler.Mitchell));
            using var data = small.Encode(SKEncodedImageFormat.Jpeg, 90 - (i / 240));
            await File.WriteAllBytesAsync(Path.Combine(folder, $"p{i:D3}.jpg"), data.ToArray());
        }
    }

    internal sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("bench-catalog").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}

using System.Diagnostics;
using System.Numerics.Tensors;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace EmbeddingService.Bench;

/// <summary>
/// The store's layout, chosen by measurement: for each column type and vector index, a catalogue of N generated
/// vectors loaded with COPY, its indexes built after the load on one worker (pgvector 0.8.0's parallel HNSW build is
/// CVE-2026-3172's), then queries near stored photos, unfiltered and with filters of four selectivities, against the
/// exact answer computed here in float32. Prints build times, bytes per item and recall@10 / p50 / p95 per layout.
/// </summary>
internal static class LayoutBench
{
    /// <summary>A column type and the index on it; <paramref name="Rerank"/> > 0: the index orders binary codes, and that many candidates are re-ranked exactly.</summary>
    private sealed record Layout(string Name, string Column, string Index, string Order, int Rerank = 0, bool Strict = true);

    private static readonly Layout[] Layouts =
    [
        new("vector + HNSW (today)", "vector(512)", "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)", "embedding <=> @q::vector"),
        new("halfvec + HNSW", "halfvec(512)", "USING hnsw (embedding halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)", "embedding <=> @q::halfvec"),
        new("halfvec + binary HNSW, re-rank 100", "halfvec(512)", "USING hnsw ((binary_quantize(embedding)::bit(512)) bit_hamming_ops) WITH (m = 16, ef_construction = 64)",
            "binary_quantize(embedding)::bit(512) <~> binary_quantize(@q::halfvec)::bit(512)", Rerank: 100, Strict: false),
    ];

    private sealed record Filter(string Name, Func<Catalogue, int, string?> Json, Func<Catalogue, int, int, bool> Matches);

    private static readonly Filter[] Filters =
    [
        new("no filter", (_, _) => null, (_, _, _) => true),
        new("own brand (0.1 %)", (c, q) => $"{{\"brand\": \"b{c.Brand(q)}\"}}", (c, q, i) => c.Brand(i) == c.Brand(q)),
        new("own category (1 %)", (c, q) => $"{{\"category\": \"c{c.Category(q)}\"}}", (c, q, i) => c.Category(i) == c.Category(q)),
        new("unrelated colour (10 %)", (c, q) => $"{{\"colour\": \"k{c.Colour[q]}\"}}", (c, q, i) => c.Colour[i] == c.Colour[q]),
        new("unrelated shelf (0.1 %)", (c, q) => $"{{\"shelf\": \"s{c.Shelf[q]}\"}}", (c, q, i) => c.Shelf[i] == c.Shelf[q]),
    ];

    /// <summary>Up to this many matching rows a filtered search is exact (the GIN index finds them); beyond, HNSW with the filter.</summary>
    private const int ExactUpTo = 2_000;

    public static async Task RunAsync(BenchOptions options, Report report)
    {
        var server = Environment.GetEnvironmentVariable("BENCH_DATABASE_URL") ?? throw new InvalidOperationException("BENCH_DATABASE_URL is not set.");
        var database = await StorageBench.CreateDatabaseAsync(server, "bench_layout");
        var connectionString = new Storage.StorageOptions { DatabaseUrl = database }.ConnectionString();
        await using (var plain = NpgsqlDataSource.Create(connectionString))
        {
            // Before the vector-mapped data source first connects: it maps the types that exist then.
            await StorageBench.Execute(plain, "CREATE EXTENSION IF NOT EXISTS vector");
        }

        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.UseVector();
        await using var dataSource = builder.Build();
        var clock = Stopwatch.StartNew();
        var catalogue = Catalogue.Generate(options.Items);
        Console.Error.WriteLine($"  generated {options.Items:N0} catalogue vectors in {clock.Elapsed.TotalSeconds:F0} s; shared_buffers {await ScalarAsync(dataSource, "SHOW shared_buffers")}");
        var random = new Random(13);
        var queries = Enumerable.Range(0, options.Queries).Select(_ => random.Next(catalogue.Count)).Select(i => (Item: i, Vector: catalogue.Query(i, random))).ToArray();
        clock.Restart();
        var truth = queries.Select(q => Filters.Select(f => catalogue.Exact(q.Vector, i => f.Matches(catalogue, q.Item, i))).ToArray()).ToArray();
        Console.Error.WriteLine($"  exact answers for {queries.Length} queries x {Filters.Length} filters in {clock.Elapsed.TotalSeconds:F0} s");

        foreach (var layout in Layouts.Where(l => options.Layouts is null || options.Layouts.Any(n => l.Name.StartsWith(n, StringComparison.OrdinalIgnoreCase))))
        {
            var (load, gin, build) = await LoadAsync(dataSource, catalogue, layout);
            var table = await SizeAsync(dataSource, "pg_table_size('items')");
            var vectorIndex = await SizeAsync(dataSource, "pg_relation_size('items_embedding')");
            var others = await SizeAsync(dataSource, "pg_indexes_size('items')") - vectorIndex;
            report.Add($"layout {layout.Name}, {catalogue.Count:N0} items: load / GIN / vector index build", $"{Report.F(catalogue.Count / load, 0)} rows/s",
                "", "", "", $"COPY {Report.F(load, 0)} s, GIN {Report.F(gin, 0)} s, vector index {Report.F(build, 0)} s (1 worker); bytes/item: table {table / catalogue.Count:N0}, " +
                $"vector index {vectorIndex / catalogue.Count:N0}, id + metadata indexes {others / catalogue.Count:N0}, all indexes {(vectorIndex + others) / catalogue.Count:N0}, " +
                $"table + indexes {(table + vectorIndex + others) / catalogue.Count:N0}");
            foreach (var rerank in layout.Rerank == 0 ? [0] : new[] { layout.Rerank, layout.Rerank * 2 })
            {
                for (var f = 0; f < Filters.Length; f++)
                {
                    var latencies = new List<double>();
                    double recall = 0;
                    var shortAnswers = 0;
                    for (var q = 0; q < queries.Length; q++)
                    {
                        var timer = Stopwatch.StartNew();
                        var found = await SearchAsync(dataSource, layout with { Rerank = rerank }, queries[q].Vector, Filters[f].Json(catalogue, queries[q].Item));
                        latencies.Add(timer.Elapsed.TotalMilliseconds);
                        var expected = truth[q][f];
                        recall += expected.Count == 0 ? 1 : expected.Count(e => found.Contains(Catalogue.Id(e))) / (double)expected.Count;
                        if (found.Count < expected.Count) shortAnswers++;
                    }

                    latencies.Sort();
                    report.Add($"  search {(rerank == 0 ? layout.Name : layout.Name.Replace($"re-rank {layout.Rerank}", $"re-rank {rerank}", StringComparison.Ordinal))}, {Filters[f].Name}, k=10, 1 client", Report.F(1000 / latencies.Average()), Report.F(latencies[latencies.Count / 2]),
                        Report.F(latencies[(int)(latencies.Count * 0.95)]), Report.F(latencies[(int)(latencies.Count * 0.99)]),
                        $"recall@10 {Report.F(recall / queries.Length, 3)}; fewer than k returned: {shortAnswers} of {queries.Length}");
                }
            }

            await StorageBench.Execute(dataSource, "DROP TABLE items");
        }
    }

    private static async Task<(double Load, double Gin, double Build)> LoadAsync(NpgsqlDataSource dataSource, Catalogue catalogue, Layout layout)
    {
        await StorageBench.Execute(dataSource, $"DROP TABLE IF EXISTS items; CREATE TABLE items (id text PRIMARY KEY, embedding {layout.Column} NOT NULL, metadata jsonb NOT NULL)");
        var clock = Stopwatch.StartNew();
        var half = layout.Column.StartsWith("halfvec", StringComparison.Ordinal);
        await using (var connection = await dataSource.OpenConnectionAsync())
        await using (var import = await connection.BeginBinaryImportAsync("COPY items (id, embedding, metadata) FROM STDIN (FORMAT BINARY)"))
        {
            var halfValues = new Half[Catalogue.Dimension];
            for (var i = 0; i < catalogue.Count; i++)
            {
                await import.StartRowAsync();
                await import.WriteAsync(Catalogue.Id(i), NpgsqlDbType.Text);
                if (half)
                {
                    TensorPrimitives.ConvertToHalf(catalogue.Vector(i), halfValues);
                    await import.WriteAsync(new HalfVector(halfValues.ToArray()));
                }
                else
                {
                    await import.WriteAsync(new Vector(catalogue.Vector(i).ToArray()));
                }

                await import.WriteAsync(catalogue.MetadataJson(i), NpgsqlDbType.Jsonb);
            }

            await import.CompleteAsync();
        }

        var load = clock.Elapsed.TotalSeconds;
        clock.Restart();
        await StorageBench.Execute(dataSource, "SET maintenance_work_mem = '4GB'; SET max_parallel_maintenance_workers = 0; CREATE INDEX items_metadata ON items USING gin (metadata jsonb_path_ops)");
        var gin = clock.Elapsed.TotalSeconds;
        clock.Restart();
        await StorageBench.Execute(dataSource, $"SET maintenance_work_mem = '4GB'; SET max_parallel_maintenance_workers = 0; CREATE INDEX items_embedding ON items {layout.Index}; ANALYZE items");
        return (load, gin, clock.Elapsed.TotalSeconds);
    }

    /// <summary>The ids of the 10 nearest (matching) items, as the store would search them.</summary>
    private static async Task<HashSet<string>> SearchAsync(NpgsqlDataSource dataSource, Layout layout, float[] query, string? filter)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var exact = filter is not null && await CountAsync(connection, transaction, filter) <= ExactUpTo;
        var found = await RunAsync(connection, transaction, layout, query, filter, exact);
        if (found.Count < 10 && filter is not null && !exact) found = await RunAsync(connection, transaction, layout, query, filter, exact: true);
        await transaction.CommitAsync();
        return found;
    }

    private static async Task<HashSet<string>> RunAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Layout layout, float[] query, string? filter, bool exact)
    {
        var distance = layout.Column.StartsWith("halfvec", StringComparison.Ordinal) ? "embedding <=> @q::halfvec" : "embedding <=> @q::vector";
        var where = filter is null ? string.Empty : "WHERE metadata @> @filter::jsonb";
        var settings = exact
            ? "SET LOCAL enable_indexscan = off"
            : $"SET LOCAL hnsw.ef_search = {(layout.Rerank > 0 ? layout.Rerank : filter is null ? 40 : 100)}; SET LOCAL hnsw.max_scan_tuples = 50000;" +
              (filter is null ? string.Empty : $" SET LOCAL hnsw.iterative_scan = {(layout.Strict ? "strict_order" : "relaxed_order")};");
        await using (var set = new NpgsqlCommand(settings + (exact ? string.Empty : " SET LOCAL enable_indexscan = on"), connection, transaction)) await set.ExecuteNonQueryAsync();
        var sql = exact || layout.Rerank == 0
            ? $"SELECT id FROM items {where} ORDER BY {(exact ? distance : layout.Order)} LIMIT 10"
            : $"SELECT id FROM (SELECT id, embedding FROM items {where} ORDER BY {layout.Order} LIMIT {layout.Rerank}) candidates ORDER BY {distance} LIMIT 10";
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.AddWithValue("q", new Vector(query));
        if (filter is not null) command.Parameters.AddWithValue("filter", NpgsqlDbType.Jsonb, filter);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) ids.Add(reader.GetString(0));
        return ids;
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string filter)
    {
        await using var count = new NpgsqlCommand($"SELECT count(*) FROM (SELECT 1 FROM items WHERE metadata @> @filter::jsonb LIMIT {ExactUpTo + 1}) matching", connection, transaction);
        count.Parameters.AddWithValue("filter", NpgsqlDbType.Jsonb, filter);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    private static async Task<long> SizeAsync(NpgsqlDataSource dataSource, string expression) => (long)(await ScalarAsync(dataSource, $"SELECT {expression}"))!;

    private static async Task<object?> ScalarAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return await command.ExecuteScalarAsync();
    }
}

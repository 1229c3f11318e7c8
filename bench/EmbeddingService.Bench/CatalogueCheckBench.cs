using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace EmbeddingService.Bench;

/// <summary>
/// The catalogue checking itself at the products benchmark's store (<c>--catalogue-checks</c>, after <c>--products</c>):
/// near-duplicate copies planted as vectors at known distances (resized or recompressed copies sit within 0.01) beside
/// distinct items just beyond the threshold, imported in bulk (so unscanned), then the <c>duplicates</c> command over the
/// whole store: its time, the planted pairs found, the distinct ones never grouped; then <c>tag</c> with 100 labels over
/// every stored vector (a dry run: scoring), and written for one shelf (0.1 %: the write path).
/// </summary>
internal static class CatalogueCheckBench
{
    private const int Planted = 2_000;

    public static async Task RunAsync(BenchOptions options, string modelDirectory, Report report)
    {
        var server = Environment.GetEnvironmentVariable("BENCH_DATABASE_URL") ?? throw new InvalidOperationException("BENCH_DATABASE_URL is not set.");
        var target = server[..server.LastIndexOf('/')] + "/bench_products";
        var service = Path.Combine(options.RepositoryRoot, "src", "EmbeddingService", "bin", "Release", "net10.0", "EmbeddingService.dll");
        await using var store = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = target }.ConnectionString());
        long items;
        try
        {
            await using var count = store.CreateCommand("SELECT count(*) FROM items");
            items = (long)(await count.ExecuteScalarAsync())!;
        }
        catch (PostgresException)
        {
            throw new InvalidOperationException("--catalogue-checks runs on the store of --products: run scripts/bench.sh --products --items N first.");
        }

        // Planted: a near copy (distance 0.001-0.0095) and a distinct item (0.0105-0.03) of 2,000 stored items each.
        var random = new Random(29);
        await StorageBench.Execute(store, "DELETE FROM items WHERE id LIKE 'plant-%'; TRUNCATE duplicate_scans, item_pairs");
        var originals = new List<(string Id, float[] Vector)>();
        await using (var sample = store.CreateCommand($"SELECT id, embedding::real[] FROM items TABLESAMPLE SYSTEM (1) REPEATABLE (5) LIMIT {Planted * 2}"))
        await using (var reader = await sample.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync()) originals.Add((reader.GetString(0), reader.GetFieldValue<float[]>(1)));
        }

        var file = Path.Combine(Path.GetTempPath(), $"bench-plants-{Guid.NewGuid():N}.jsonl");
        var near = new List<(string Copy, string Original)>();
        var far = new List<(string Copy, string Original)>();
        await using (var writer = new StreamWriter(file, false, new UTF8Encoding(false)))
        {
            for (var i = 0; i < originals.Count; i++)
            {
                var isNear = i % 2 == 0;
                var distance = isNear ? 0.001 + (random.NextDouble() * 0.0085) : 0.0105 + (random.NextDouble() * 0.0195);
                var id = $"plant-{(isNear ? "near" : "far")}-{i:D5}";
                (isNear ? near : far).Add((id, originals[i].Id));
                await writer.WriteLineAsync(JsonSerializer.Serialize(new { id, embedding = At(originals[i].Vector, distance, random) }));
            }
        }

        var imported = (await BenchProcess.RunAsync("dotnet", [service, "import", file], [("DATABASE_URL", target)])).Output;
        File.Delete(file);
        Console.Error.WriteLine(imported.Split('\n').FirstOrDefault(l => l.StartsWith("imported", StringComparison.Ordinal)));

        var clock = Stopwatch.StartNew();
        var groups = Path.Combine(Path.GetTempPath(), $"bench-groups-{Guid.NewGuid():N}.jsonl");
        var run = (await BenchProcess.RunAsync("dotnet", [service, "duplicates", "--out", groups], [("DATABASE_URL", target)])).Output;
        var elapsed = clock.Elapsed;
        var member = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in await File.ReadAllLinesAsync(groups))
        {
            using var group = JsonDocument.Parse(line);
            var name = group.RootElement.GetProperty("group").GetString()!;
            foreach (var item in group.RootElement.GetProperty("items").EnumerateArray()) member[item.GetProperty("id").GetString()!] = name;
        }

        File.Delete(groups);
        var found = near.Count(p => member.TryGetValue(p.Copy, out var g) && member.TryGetValue(p.Original, out var o) && g == o);
        var wronglyGrouped = far.Count(p => member.TryGetValue(p.Copy, out var g) && member.TryGetValue(p.Original, out var o) && g == o);
        report.Add($"duplicates command, {items + originals.Count:N0} items, max distance 0.01, 2 workers", Report.F((items + originals.Count) / elapsed.TotalSeconds, 0), "", "", "",
            $"{elapsed.TotalMinutes:F1} min (target <= 60); planted near pairs found {found} of {near.Count} ({100.0 * found / near.Count:F2} %, target >= 99 %); " +
            $"distinct pairs at 0.0105-0.03 grouped: {wronglyGrouped} of {far.Count}; {run.Split('\n').FirstOrDefault(l => l.StartsWith("scanned", StringComparison.Ordinal))?.Trim()}");

        // Tags: 100 labels, every stored vector scored (dry run), then written for one shelf.
        var labels = Path.Combine(Path.GetTempPath(), $"bench-labels-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(labels, Enumerable.Range(0, 100).Select(i => $"product kind {i}"));
        (string, string)[] environment = [("DATABASE_URL", target), ("MODEL_DIR", modelDirectory), ("MODEL_AUTO_DOWNLOAD", "false")];
        clock.Restart();
        var dry = (await BenchProcess.RunAsync("dotnet", [service, "tag", "--labels", labels, "--key", "kind", "--dry-run"], environment)).Output;
        var dryTime = clock.Elapsed;
        report.Add($"tag --dry-run, 100 labels, {items + originals.Count:N0} items", Report.F((items + originals.Count) / dryTime.TotalSeconds, 0), "", "", "",
            $"{dryTime.TotalSeconds:F1} s for the whole command (model load, label embedding, a COPY of every vector); {Summary(dry, "would tag")}");
        clock.Restart();
        var written = (await BenchProcess.RunAsync("dotnet", [service, "tag", "--labels", labels, "--key", "kind", "--filter", "{\"shelf\": \"s7\"}"], environment)).Output;
        report.Add("tag, 100 labels, one shelf (0.1 %) written", "", "", "", "", $"{clock.Elapsed.TotalSeconds:F1} s; {Summary(written, "tagged")}");
        File.Delete(labels);
    }

    private static string Summary(string output, string start) =>
        output.Split('\n').FirstOrDefault(l => l.StartsWith(start, StringComparison.Ordinal))?.Trim() ?? output.Trim();

    /// <summary>A unit vector at exactly <paramref name="distance"/> (1 - cosine) from <paramref name="from"/>.</summary>
    private static float[] At(float[] from, double distance, Random random)
    {
        var unit = from.ToArray();
        TensorPrimitives.Divide(unit, TensorPrimitives.Norm(unit), unit);
        var other = new float[unit.Length];
        for (var d = 0; d < other.Length; d++) other[d] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        var along = TensorPrimitives.Dot(other, unit);
        for (var d = 0; d < other.Length; d++) other[d] -= along * unit[d];
        TensorPrimitives.Divide(other, TensorPrimitives.Norm(other), other);
        var cos = 1 - distance;
        var sin = Math.Sqrt(1 - (cos * cos));
        return [.. unit.Zip(other, (u, o) => (float)((cos * u) + (sin * o)))];
    }
}

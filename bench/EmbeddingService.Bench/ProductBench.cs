using System.Diagnostics;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace EmbeddingService.Bench;

/// <summary>
/// Search for products at N items (<c>--products --items N</c>), products of 4 photos each with 20-word titles
/// holding a SKU: imported from another database's table (with product and text columns), then over HTTP from one
/// client: an item search (the baseline), a grouped search (and its recall of products against the exact grouping
/// computed here), a composed query of three terms, hybrid search naming a SKU, and what product and text cost a row.
/// </summary>
internal static class ProductBench
{
    private const int PhotosPerProduct = 4, TitleWords = 20;

    public static async Task RunAsync(BenchOptions options, string modelDirectory, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var server = Environment.GetEnvironmentVariable("BENCH_DATABASE_URL") ?? throw new InvalidOperationException("BENCH_DATABASE_URL is not set.");
        var clock = Stopwatch.StartNew();
        var catalogue = Catalogue.Generate(options.Items, photosPerProduct: PhotosPerProduct);
        Console.Error.WriteLine($"catalogue of {catalogue.Count:N0} items in {catalogue.Products:N0} products generated in {clock.Elapsed.TotalSeconds:F0} s");
        var target = server[..server.LastIndexOf('/')] + "/bench_products";
        if (!BenchOptions.ReuseStore)
        {
            var source = await StorageBench.CreateDatabaseAsync(server, "bench_products_source");
            target = await StorageBench.CreateDatabaseAsync(server, "bench_products");
            await StoreScaleBench.FillSourceAsync(source, catalogue, i => (ProductId(catalogue.Product(i)), Title(catalogue.Product(i), i / catalogue.Products)));
            Console.Error.WriteLine($"source table filled at {clock.Elapsed.TotalSeconds:F0} s");
            var service = Path.Combine(options.RepositoryRoot, "src", "EmbeddingService", "bin", "Release", "net10.0", "EmbeddingService.dll");
            var import = (await BenchProcess.RunAsync("dotnet", [service, "import", "--from-database", source, "--query", "SELECT id, embedding, metadata, product, text FROM products"],
                [("DATABASE_URL", target), ("INDEX_BUILD_MEMORY_MB", "4096")])).Output;
            var summary = import.Split('\n').FirstOrDefault(l => l.StartsWith("imported ", StringComparison.Ordinal))?.Trim() ?? import.Trim();
            report.Add($"import --from-database with product and text, {catalogue.Count:N0} rows into an empty store", "", "", "", "", summary);
            Console.Error.WriteLine($"imported at {clock.Elapsed.TotalSeconds:F0} s: {summary}");
        }

        await using (var store = NpgsqlDataSource.Create(new Storage.StorageOptions { DatabaseUrl = target }.ConnectionString()))
        {
            await StorageBench.Execute(store, "CREATE EXTENSION IF NOT EXISTS pg_prewarm");
            await StorageBench.Execute(store, "SELECT pg_prewarm('items'), pg_prewarm('items_embedding'), pg_prewarm('items_metadata'), pg_prewarm('items_pkey'), " +
                "pg_prewarm('items_product'), pg_prewarm('items_text')");
            await using var sizes = store.CreateCommand("""
                SELECT avg(coalesce(pg_column_size(product), 0) + coalesce(pg_column_size(text), 0))::float8,
                       pg_relation_size('items_product')::float8 / count(*), pg_relation_size('items_text')::float8 / count(*),
                       avg(array_length(regexp_split_to_array(text, '\s+'), 1))::float8
                FROM items
                """);
            await using var reader = await sizes.ExecuteReaderAsync();
            await reader.ReadAsync();
            var (columns, productIndex, textIndex, words) = (reader.GetDouble(0), reader.GetDouble(1), reader.GetDouble(2), reader.GetDouble(3));
            report.Add($"bytes per item added by product and text ({words:F0}-word titles)", Report.F(columns + productIndex + textIndex, 0), "", "", "",
                $"columns {Report.F(columns, 0)} (heap), product index {Report.F(productIndex, 0)}, text index (GIN) {Report.F(textIndex, 0)}");
        }

        await using var running = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, new Dictionary<string, string>(settings) { ["DATABASE_URL"] = target });
        using var http = new HttpClient { BaseAddress = running.Address };
        var random = new Random(17);
        var queries = Enumerable.Range(0, options.Queries).Select(_ => random.Next(catalogue.Count)).Select(i => (Item: i, Vector: catalogue.Query(i, random))).ToArray();

        // Warm-up (JIT, pools, the text tower): a few of each kind, not measured.
        foreach (var (item, vector) in queries.Take(10))
        {
            await PostAsync(http, new { vector, k = 10 });
            await PostAsync(http, new { vector, k = 10, group_by = "product" });
            await PostAsync(http, new { text = Sku(catalogue.Product(item)), mode = "hybrid", k = 10 });
            await PostAsync(http, new { query = new object[] { new { vector }, new { item_id = Catalogue.Id(item) }, new { text = "red", weight = 0.5 } }, k = 10 });
        }

        var single = await MeasureAsync(queries, q => new { vector = q.Vector, k = 10 }, http);
        report.Add($"POST /search {{\"vector\"}}, k=10, {catalogue.Count:N0} items, 1 client (the baseline)", "", Report.F(single.P50), Report.F(single.P95), "", "");

        var recall = 0.0;
        var grouped = await MeasureAsync(queries, q => new { vector = q.Vector, k = 10, group_by = "product", group_size = 3 }, http, (q, answer) =>
        {
            var found = answer.GetProperty("results").EnumerateArray().Select(g => g.GetProperty("product").GetString()).ToHashSet();
            var exact = ExactProducts(catalogue, q.Vector, 10);
            recall += exact.Count(p => found.Contains(ProductId(p))) / (double)exact.Count;
        });
        report.Add($"grouped search (group_by product, group_size 3), k=10 products, {catalogue.Products:N0} products, 1 client", "", Report.F(grouped.P50), Report.F(grouped.P95), "",
            $"recall of products@10 vs the exact grouping {Report.F(recall / queries.Length, 3)} (targets p50 <= 15, p95 <= 40 ms, recall >= 0.95)");

        var text = await MeasureAsync(queries, _ => new { text = "red" }, http, path: "/embed-text");
        var composed = await MeasureAsync(queries, q => new
        {
            query = new object[] { new { vector = q.Vector }, new { item_id = Catalogue.Id((q.Item + catalogue.Products) % catalogue.Count) }, new { text = "red", weight = 0.5 } },
            k = 10,
        }, http);
        report.Add("composed query (a vector, an item, a text of weight 0.5), k=10, 1 client", "", Report.F(composed.P50), Report.F(composed.P95), "",
            $"{Report.F(composed.P50 / (single.P50 + text.P50), 2)} x (single search p50 {Report.F(single.P50)} + /embed-text p50 {Report.F(text.P50)}) (target <= 1.2)");

        var hybridFirst = 0;
        var hybrid = await MeasureAsync(queries, q => new { text = $"{Word(catalogue.Product(q.Item), 3)} {Sku(catalogue.Product(q.Item))}", mode = "hybrid", k = 10 }, http,
            (q, answer) => hybridFirst += First(answer) == ProductId(catalogue.Product(q.Item)) ? 1 : 0);
        var vectorFirst = 0;
        await MeasureAsync(queries, q => new { text = $"{Word(catalogue.Product(q.Item), 3)} {Sku(catalogue.Product(q.Item))}", k = 10 }, http,
            (q, answer) => vectorFirst += First(answer) == ProductId(catalogue.Product(q.Item)) ? 1 : 0);
        report.Add("hybrid search (a title word and the SKU), k=10, 1 client", "", Report.F(hybrid.P50), Report.F(hybrid.P95), "",
            $"the SKU's product first: hybrid {Report.F(100.0 * hybridFirst / queries.Length)} %, vector only {Report.F(100.0 * vectorFirst / queries.Length)} % " +
            "(synthetic text tower: its vectors do not read words) (targets p50 <= 20, p95 <= 50 ms, >= 99 %)");
    }

    private static string? First(JsonElement answer) =>
        answer.GetProperty("results").GetArrayLength() == 0 ? null : answer.GetProperty("results")[0].TryGetProperty("product", out var p) ? p.GetString() : null;

    private static string ProductId(int product) => $"prod{product:D7}";

    /// <summary>A SKU shaped as shops write them: letters and a digit, a hyphen, six digits.</summary>
    private static string Sku(int product) => $"{(char)('A' + (product % 26))}{(char)('A' + (product / 26 % 26))}{product % 10}-{product:D6}";

    /// <summary>The title's words: pseudo-words from a vocabulary of 4,000, the same for a product's photos but two, then the SKU.</summary>
    private static string Title(int product, int photo)
    {
        var title = new StringBuilder(200);
        for (var w = 0; w < TitleWords - 1; w++)
        {
            title.Append(Word(product, w < TitleWords - 3 ? w : w + (photo * 7))).Append(' ');
        }


        return title.Append(Sku(product)).ToString();
    }

    private static readonly string[] Syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ba", "de", "fi", "go", "hu", "ja", "ke", "li", "mo", "nu", "pa", "re"];

    private static string Word(int product, int position)
    {
        // A fixed hash (HashCode is seeded per process): the same titles on every run.
        var index = (int)((((ulong)product * 31) + (ulong)position) * 2654435761UL % 4000);
        return Syllables[index % 20] + Syllables[index / 20 % 20] + Syllables[index / 400 % 20];
    }

    /// <summary>The k best products by their best item's float32 cosine: the truth grouped recall is measured against.</summary>
    private static List<int> ExactProducts(Catalogue catalogue, float[] query, int k)
    {
        var best = new float[catalogue.Products];
        Array.Fill(best, float.NegativeInfinity);
        for (var i = 0; i < catalogue.Count; i++)
        {
            var score = TensorPrimitives.Dot(catalogue.Vector(i), query);
            var product = catalogue.Product(i);
            if (score > best[product]) best[product] = score;
        }

        var top = new PriorityQueue<int, float>();
        for (var p = 0; p < best.Length; p++)
        {
            if (top.Count < k) top.Enqueue(p, best[p]);
            else if (top.TryPeek(out _, out var worst) && best[p] > worst) top.EnqueueDequeue(p, best[p]);
        }

        return [.. top.UnorderedItems.Select(e => e.Element)];
    }

    private static async Task<JsonElement> PostAsync(HttpClient http, object body, string path = "/search")
    {
        using var response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<(double P50, double P95)> MeasureAsync((int Item, float[] Vector)[] queries, Func<(int Item, float[] Vector), object> body, HttpClient http,
        Action<(int Item, float[] Vector), JsonElement>? check = null, string path = "/search")
    {
        var latencies = new List<double>(queries.Length);
        foreach (var query in queries)
        {
            var timer = Stopwatch.StartNew();
            var answer = await PostAsync(http, body(query), path);
            latencies.Add(timer.Elapsed.TotalMilliseconds);
            check?.Invoke(query, answer);
        }

        latencies.Sort();
        return (latencies[latencies.Count / 2], latencies[(int)(latencies.Count * 0.95)]);
    }
}

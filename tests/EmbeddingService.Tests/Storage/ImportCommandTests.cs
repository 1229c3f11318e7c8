using System.Globalization;
using System.Numerics.Tensors;
using EmbeddingService.Storage;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// <c>import</c> as users run it (a process): vectors from a JSON-lines file or from another database's table into the
/// store, bad rows named and skipped, the good ones kept and searchable, a rerun skipping what is stored.
/// </summary>
public sealed class ImportCommandTests
{
    private static string Vector(int seed, float scale = 1, int dimension = 512)
    {
        var random = new Random(seed);
        return "[" + string.Join(",", Enumerable.Range(0, dimension).Select(_ => ((float)((random.NextDouble() * 2) - 1) * scale).ToString("R", CultureInfo.InvariantCulture))) + "]";
    }

    private static Task<(int ExitCode, string Output, string Error)> ImportAsync(string databaseUrl, params string[] arguments) =>
        Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "import", .. arguments], null, ("DATABASE_URL", databaseUrl));

    /// <summary>
    /// Vectors of another model: MODEL_REPO names it (no model directory needed: an OpenAI name says its dimension), the
    /// store is made with its dimension, vectors of another width are named, and an import of ViT-B/32's vectors into
    /// that store is refused.
    /// </summary>
    [DatabaseFact]
    public async Task Vectors_of_the_model_model_repo_names_are_imported_with_its_dimension()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var folder = new TempDirectory("import-large");
        var file = folder.Combine("vectors.jsonl");
        await File.WriteAllLinesAsync(file, [
            $"{{\"id\": \"a\", \"embedding\": {Vector(1, dimension: 768)}}}",
            $"{{\"id\": \"b\", \"embedding\": {Vector(2)}}}",
            $"{{\"id\": \"c\", \"embedding\": {Vector(3, dimension: 768)}}}"]);
        var (exitCode, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "import", file], null,
            ("DATABASE_URL", database.Url), ("MODEL_REPO", "Xenova/clip-vit-large-patch14"), ("MODEL_DIR", folder.Combine("no-model-here")));
        Assert.True(exitCode == 1, $"exit {exitCode}\n{output}\n{error}");
        Assert.Contains("imported 2 (2 new, 0 replaced), skipped 0 unchanged, failed 1", output, StringComparison.Ordinal);
        Assert.Contains("line 2: embedding has 512 numbers, not 768", output, StringComparison.Ordinal);
        Assert.Equal("CLIP-ViT-L/14", await database.ScalarAsync<string>("SELECT value FROM store_info WHERE key = 'model'"));
        Assert.Equal("768", await database.ScalarAsync<string>("SELECT value FROM store_info WHERE key = 'dimension'"));

        var (refused, _, why) = await ImportAsync(database.Url, file);
        Assert.Equal(3, refused);
        Assert.Contains("model 'CLIP-ViT-L/14', this service runs 'CLIP-ViT-B/32'", why, StringComparison.Ordinal);
    }

    [DatabaseFact]
    public async Task A_jsonl_file_is_imported_bad_lines_named_and_a_rerun_skips_what_is_stored()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var folder = new TempDirectory("import");
        var file = folder.Combine("vectors.jsonl");
        var lines = Enumerable.Range(0, 300).Select(i => $"{{\"id\": \"p{i}\", \"embedding\": {Vector(i, 7)}, \"metadata\": {{\"shop\": \"s{i % 3}\"}}}}").ToList();
        lines.Insert(10, "{\"id\": \"short\", \"embedding\": [1, 2, 3]}");
        lines.Insert(20, $"{{\"id\": \"zero\", \"embedding\": [{string.Join(",", Enumerable.Repeat("0", 512))}]}}");
        lines.Insert(30, $"{{\"id\": \"p5\", \"embedding\": {Vector(99)}}}");
        lines.Insert(40, "{\"id\": \"broken\", \"embedding\": [1, 2,");
        lines.Insert(50, $"{{\"id\": \"meta\", \"embedding\": {Vector(98)}, \"metadata\": [1]}}");
        lines.Insert(60, "");
        await File.WriteAllLinesAsync(file, lines);

        var (exitCode, output, error) = await ImportAsync(database.Url, file);
        Assert.True(exitCode == 1, $"exit {exitCode}\n{output}\n{error}");
        Assert.Contains("imported 300 (300 new, 0 replaced), skipped 0 unchanged, failed 5", output, StringComparison.Ordinal);
        Assert.Matches(@"\(COPY into the empty store\), import's own CPU \d+\.\d s \(\d+\.\d s per million rows\); indexes built in", output);
        Assert.Contains("line 11: embedding has 3 numbers, not 512", output, StringComparison.Ordinal);
        Assert.Contains("line 21: embedding is all zeros", output, StringComparison.Ordinal);
        Assert.Contains("line 31: id 'p5' came before in this input", output, StringComparison.Ordinal);
        Assert.Contains("line 41: not valid JSON", output, StringComparison.Ordinal);
        Assert.Contains("line 51: \"metadata\" must be a JSON object", output, StringComparison.Ordinal);
        Assert.Equal(300L, await database.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.Equal(2L, await database.ScalarAsync<long>("SELECT count(*) FROM pg_indexes WHERE indexname IN ('items_embedding', 'items_metadata')"));
        // Normalized on the way in, and searchable: a vector finds its own item first.
        await using (var store = await PostgresVectorStore.OpenAsync(new StorageOptions { DatabaseUrl = database.Url }, new StoreIdentity("CLIP-ViT-B/32", "fp32", 512), CancellationToken.None))
        {
            var stored = await store.GetAsync("p7", withEmbedding: true, CancellationToken.None);
            Assert.InRange(TensorPrimitives.Norm(stored!.Embedding), 0.999f, 1.001f);
            Assert.Equal("{\"shop\": \"s1\"}", stored.MetadataJson);
            var hits = await store.SearchAsync(new SearchQuery(stored.Embedding!, 3, "{\"shop\": \"s1\"}", null, null), CancellationToken.None);
            Assert.Equal("p7", hits[0].Id);
        }

        // A rerun: everything stored is skipped; a changed vector is replaced.
        lines[0] = $"{{\"id\": \"p0\", \"embedding\": {Vector(1000)}, \"metadata\": {{\"shop\": \"s0\"}}}}";
        await File.WriteAllLinesAsync(file, lines);
        var (_, again, _) = await ImportAsync(database.Url, file);
        Assert.True(again.Contains("imported 1 (0 new, 1 replaced), skipped 299 unchanged, failed 5", StringComparison.Ordinal), again);
    }

    [DatabaseFact]
    public async Task Vectors_are_imported_from_the_replaced_services_table_and_bad_rows_are_named_by_id()
    {
        await using var source = await TestDatabase.CreateAsync();
        await using var target = await TestDatabase.CreateAsync();
        await source.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE products (id int PRIMARY KEY, embedding vector(512), metadata jsonb, name text)");
        await source.ExecuteAsync("INSERT INTO products SELECT i, (SELECT array_agg(sin(i * 7 + d))::vector(512) FROM generate_series(1, 512) d), " +
            "jsonb_build_object('name', 'product ' || i), 'x' FROM generate_series(1, 2000) i");
        await source.ExecuteAsync("UPDATE products SET embedding = (SELECT array_agg(0)::vector(512) FROM generate_series(1, 512)) WHERE id = 17");
        await source.ExecuteAsync("UPDATE products SET embedding = NULL WHERE id = 23");

        var (exitCode, output, error) = await ImportAsync(target.Url, "--from-database", source.Url, "--query", "SELECT id, embedding, metadata FROM products ORDER BY id");
        Assert.True(exitCode == 1, $"exit {exitCode}\n{output}\n{error}");
        Assert.Contains("imported 1,998 (1,998 new, 0 replaced), skipped 0 unchanged, failed 2", output, StringComparison.Ordinal);
        Assert.Contains("id '17': embedding is all zeros", output, StringComparison.Ordinal);
        Assert.Contains("id '23': no \"embedding\"", output, StringComparison.Ordinal);
        Assert.Equal("product 42", await target.ScalarAsync<string>("SELECT metadata->>'name' FROM items WHERE id = '42'"));

        // A query that does not give vectors is refused with a sentence.
        var (badExit, _, badError) = await ImportAsync(target.Url, "--from-database", source.Url, "--query", "SELECT id, name FROM products");
        Assert.Equal(2, badExit);
        Assert.Contains("The embedding column is of type text", badError, StringComparison.Ordinal);
        var (usageExit, _, usageError) = await ImportAsync(target.Url, "--query", "SELECT 1");
        Assert.Equal(2, usageExit);
        Assert.Contains("Give either a FILE or --from-database URL --query SQL", usageError, StringComparison.Ordinal);
    }
}

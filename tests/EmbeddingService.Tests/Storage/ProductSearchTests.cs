using System.Net;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Text.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// Search for products through the HTTP API against a real PostgreSQL: results grouped by product, composed queries
/// ranked exactly as normalize(sum w x e) computed here from the embeddings the service gave, the shopper's words
/// (keyword and hybrid modes), and products and texts written by PUT, import and the indexer.
/// </summary>
public sealed class ProductSearchTests
{
    private const int Products = 12, Photos = 4;

    private static Uri Path(string path) => new(path, UriKind.Relative);

    private static Task<JsonElement> Json(HttpResponseMessage response) => TestVectors.JsonAsync(response);

    private static float[] Unit(float[] vector) => TestVectors.Unit(vector);

    private static float[] Gaussian(Random random) => TestVectors.Gaussian(random);

    /// <summary>
    /// 12 products of 4 photos (a product's photos near its centre), colour "red" on even products and "blue" on odd
    /// ones, each photo with a title holding its product's SKU; 5 items without a product. Returns every stored vector,
    /// as the service stores it (read back with ?include=embedding).
    /// </summary>
    private static async Task<Dictionary<string, (float[] Vector, string? Product, string Colour)>> CatalogueAsync(HttpClient client)
    {
        var random = new Random(11);
        var catalogue = new Dictionary<string, (float[], string?, string)>();
        for (var p = 0; p < Products; p++)
        {
            var centre = Gaussian(random);
            for (var f = 0; f < Photos; f++)
            {
                var noise = Gaussian(random);
                var vector = Unit([.. centre.Zip(noise, (c, n) => c + (0.6f * n))]);
                var colour = p % 2 == 0 ? "red" : "blue";
                var body = new { vector, product = $"P{p:D2}", text = $"Acme {colour} runner shoe, photo {f}, SKU AJ{p}-5550{p:D2}", metadata = new { colour } };
                Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(Path($"/items/p{p:D2}-{f}"), body)).StatusCode);
            }
        }

        for (var l = 0; l < 5; l++)
        {
            var body = new { vector = Gaussian(random), metadata = new { colour = "red" } };
            Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(Path($"/items/lone-{l}"), body)).StatusCode);
        }

        var page = await Json(await client.GetAsync(Path("/items?limit=1000")));
        foreach (var item in page.GetProperty("items").EnumerateArray())
        {
            var id = item.GetProperty("id").GetString()!;
            var stored = await Json(await client.GetAsync(Path($"/items/{id}?include=embedding")));
            var product = stored.GetProperty("product").ValueKind == JsonValueKind.Null ? null : stored.GetProperty("product").GetString();
            catalogue[id] = (Floats(stored.GetProperty("embedding")), product, stored.GetProperty("metadata").GetProperty("colour").GetString()!);
        }

        return catalogue;
    }

    private static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetSingle())];

    private static double Cosine(float[] a, float[] b) => TensorPrimitives.CosineSimilarity(a, b);

    /// <summary>The exact grouping: products by their best item's cosine, each with its best items.</summary>
    private static List<(string Product, List<string> Items)> ExactGroups(Dictionary<string, (float[] Vector, string? Product, string Colour)> catalogue,
        float[] query, int k, int groupSize, Func<string, bool> matches)
    {
        return [.. catalogue.Where(e => matches(e.Key))
            .Select(e => (e.Key, Group: e.Value.Product ?? $"item:{e.Key}", Score: Cosine(query, e.Value.Vector)))
            .GroupBy(e => e.Group)
            .Select(g => (Product: g.Key, Items: g.OrderByDescending(e => e.Score).ToList()))
            .OrderByDescending(g => g.Items[0].Score)
            .Take(k)
            .Select(g => (g.Product, g.Items.Take(groupSize).Select(e => e.Key).ToList()))];
    }

    private static List<(string Product, List<string> Items)> Groups(JsonElement answer) =>
        [.. answer.GetProperty("results").EnumerateArray().Select(g => (
            g.GetProperty("product").ValueKind == JsonValueKind.Null ? $"item:{g.GetProperty("items")[0].GetProperty("id").GetString()}" : g.GetProperty("product").GetString()!,
            g.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToList()))];

    [DatabaseFact]
    public async Task Grouped_search_returns_k_products_with_their_best_photos_as_an_exact_grouping_would_with_filters_and_when_fewer_match()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var catalogue = await CatalogueAsync(client);

        foreach (var (queryId, k, groupSize) in new[] { ("p03-1", 5, 3), ("p08-0", 10, 2), ("lone-2", 4, 1), ("p00-0", 17, 4) })
        {
            var query = catalogue[queryId].Vector;
            var answer = await Json(await client.PostAsJsonAsync(Path("/search"), new { vector = query, k, group_by = "product", group_size = groupSize }));
            var expected = ExactGroups(catalogue, query, k, groupSize, _ => true);
            Assert.Equal(expected, Groups(answer), new GroupComparer());
            foreach (var group in answer.GetProperty("results").EnumerateArray())
            {
                var scores = group.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("score").GetDouble()).ToList();
                Assert.Equal(scores.OrderDescending(), scores);
                Assert.Equal(scores[0], group.GetProperty("score").GetDouble());
            }
        }

        // A filter applies to items: only red items, and so only even products and the lone items.
        var red = await Json(await client.PostAsJsonAsync(Path("/search"),
            new { vector = catalogue["p05-0"].Vector, k = 6, group_by = "product", filter = new { colour = "red" } }));
        Assert.Equal(ExactGroups(catalogue, catalogue["p05-0"].Vector, 6, 3, id => catalogue[id].Colour == "red"), Groups(red), new GroupComparer());

        // Fewer matching products than k: all of them, no more.
        var blue = await Json(await client.PostAsJsonAsync(Path("/search"),
            new { vector = catalogue["p02-0"].Vector, k = 50, group_by = "product", group_size = 10, filter = new { colour = "blue" } }));
        Assert.Equal(Products / 2, blue.GetProperty("results").GetArrayLength());
        Assert.All(blue.GetProperty("results").EnumerateArray(), g => Assert.Equal(Photos, g.GetProperty("items").GetArrayLength()));

        // Grouping works in keyword mode too: the words "red runner" are in the even products' titles.
        var words = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = "red runner", mode = "keyword", k = 20, group_by = "product", group_size = 2 }));
        Assert.Equal(Products / 2, words.GetProperty("results").GetArrayLength());
        Assert.All(words.GetProperty("results").EnumerateArray(), g => Assert.Equal(2, g.GetProperty("items").GetArrayLength()));
    }

    [DatabaseFact]
    public async Task A_composed_query_ranks_as_the_normalized_weighted_sum_of_its_terms_and_leaves_out_the_items_it_names()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var catalogue = await CatalogueAsync(client);
        var text = Floats((await Json(await client.PostAsJsonAsync(Path("/embed-text"), new { text = "a red running shoe" }))).GetProperty("embedding"));
        var random = new Random(4);
        var given = Gaussian(random);

        var terms = new (object Term, float[] Vector, double Weight)[]
        {
            (new { item_id = "p04-2", weight = 1.0 }, catalogue["p04-2"].Vector, 1.0),
            (new { text = "a red running shoe", weight = 0.7 }, text, 0.7),
            (new { item_id = "p09-1", weight = -0.4 }, catalogue["p09-1"].Vector, -0.4),
            (new { vector = given, weight = 0.3 }, given, 0.3),
        };
        var sum = new float[512];
        foreach (var (_, vector, weight) in terms) TensorPrimitives.MultiplyAdd(Unit([.. vector]), (float)weight, sum, sum);
        Unit(sum);
        var expected = catalogue.Where(e => e.Key is not ("p04-2" or "p09-1")).OrderByDescending(e => Cosine(sum, e.Value.Vector)).Take(15).ToList();

        var answer = await Json(await client.PostAsJsonAsync(Path("/search"), new { query = terms.Select(t => t.Term), k = 15 }));
        var results = answer.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(expected.Select(e => e.Key), results.Select(r => r.GetProperty("id").GetString()));
        for (var i = 0; i < results.Count; i++)
        {
            // Half-precision storage: the service's cosine and the test's agree to ~1e-3.
            Assert.InRange(results[i].GetProperty("score").GetDouble() - Cosine(sum, expected[i].Value.Vector), -2e-3, 2e-3);
        }

        // The negative weight pushes its product away: p09's other photos rank lower than with the positive terms alone.
        var with = await Json(await client.PostAsJsonAsync(Path("/search"), new { query = terms.Select(t => t.Term), k = 60 }));
        var without = await Json(await client.PostAsJsonAsync(Path("/search"), new { query = terms.Where(t => t.Weight > 0).Select(t => t.Term), k = 60 }));
        int Place(JsonElement a, string id) => a.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).ToList().IndexOf(id);
        Assert.All(new[] { "p09-0", "p09-2", "p09-3" }, id => Assert.True(Place(with, id) > Place(without, id), $"{id}: {Place(with, id)} vs {Place(without, id)}"));

        // Multipart: a photo and words ("this photo, but red") is the two-term query.
        var photo = await File.ReadAllBytesAsync(SharedData.Image("coffee.png"));
        var imageVector = Floats((await Json(await client.PostAsync(Path("/embed-image"), ServiceFactory.Form(photo, fileName: "coffee.png")))).GetProperty("embedding"));
        using var form = ServiceFactory.Form(photo, fileName: "coffee.png");
        form.Add(new StringContent("a red running shoe"), "text");
        form.Add(new StringContent("0.5"), "text_weight");
        form.Add(new StringContent("5"), "k");
        var refined = await Json(await client.PostAsync(Path("/search"), form));
        var both = Unit([.. imageVector.Zip(text, (a, b) => a + (0.5f * b))]);
        Assert.Equal(catalogue.OrderByDescending(e => Cosine(both, e.Value.Vector)).Take(5).Select(e => e.Key),
            refined.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()));

        // An image term as a data URI is the photo's own embedding.
        var byImage = await Json(await client.PostAsJsonAsync(Path("/search"),
            new { query = new object[] { new { image = $"data:image/png;base64,{Convert.ToBase64String(photo)}" } }, k = 5 }));
        Assert.Equal(catalogue.OrderByDescending(e => Cosine(imageVector, e.Value.Vector)).Take(5).Select(e => e.Key),
            byImage.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
    }

    [DatabaseFact]
    public async Task Bad_terms_and_options_are_422_naming_the_member()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var vector = Enumerable.Range(0, 512).Select(i => (float)Math.Sin(i)).ToArray();
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(Path("/items/a"), new { vector })).StatusCode);
        (string Body, int Status, string Member)[] cases =
        [
            ("""{"text": "shoe", "group_by": "brand"}""", 422, "group_by"),
            ("""{"text": "shoe", "group_size": 3}""", 422, "group_size"),
            ("""{"text": "shoe", "group_by": "product", "group_size": 11}""", 422, "group_size"),
            ("""{"query": []}""", 422, "query"),
            ("""{"query": {"text": "shoe"}}""", 422, "query"),
            ("""{"query": [{"text": "shoe", "item_id": "a"}]}""", 422, "query"),
            ("""{"query": [{"weight": 2}]}""", 422, "query"),
            ("""{"query": [{"text": "shoe", "weight": 0}]}""", 422, "query"),
            ("""{"query": [{"text": "shoe", "weight": "Infinity"}]}""", 422, "query"),
            ("""{"query": [{"text": "shoe", "weight": 1e400}]}""", 422, "query"),
            ("""{"query": ["shoe"]}""", 422, "query"),
            ("""{"query": [{"image": "https://example.com/a.jpg"}]}""", 422, "query"),
            ("""{"query": [{"item_id": "a"}, {"item_id": "a", "weight": -1}]}""", 422, "query"),
            ("""{"query": [{"item_id": "missing"}]}""", 404, ""),
            ("""{"text": "shoe", "query": [{"text": "x"}]}""", 422, ""),
            ("""{"text": "shoe", "mode": "semantic"}""", 422, "mode"),
            ("""{"item_id": "a", "mode": "keyword"}""", 422, "mode"),
            ("""{"text": "shoe", "mode": "keyword", "min_score": 0.5}""", 422, "min_score"),
        ];
        foreach (var (body, status, member) in cases)
        {
            using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            var response = await client.PostAsync(Path("/search"), content);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True((int)response.StatusCode == status, $"{body}: {(int)response.StatusCode} {problem}");
            Assert.Contains(member, problem.GetProperty("detail").GetString()!, StringComparison.Ordinal);
        }

        foreach (var (field, value) in new[] { ("product", ""), ("product", new string('p', 257)), ("text", "   "), ("product", "a\u0001b") })
        {
            using var content = JsonContent.Create(new Dictionary<string, object> { ["vector"] = vector, [field] = value });
            var response = await client.PutAsync(Path("/items/b"), content);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(Path("/items/b"))).StatusCode);
    }

    [DatabaseFact]
    public async Task The_shoppers_words_keyword_ranks_matches_only_and_hybrid_puts_the_named_sku_first_with_both_ranks()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var catalogue = await CatalogueAsync(client);

        // The SKU as one phrase: only its product's photos match, and AJ1-555001 does not match AJ1-555010 or AJ10-...
        var keyword = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = "AJ1-555001", mode = "keyword", k = 10 }));
        Assert.Equal(["p01-0", "p01-1", "p01-2", "p01-3"], keyword.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Order());
        Assert.All(keyword.GetProperty("results").EnumerateArray(), r => Assert.Equal("P01", r.GetProperty("product").GetString()));
        var none = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = "AJ1-555002", mode = "keyword" }));
        Assert.Equal(0, none.GetProperty("results").GetArrayLength());

        // Every word is required, any order; the case does not matter.
        var both = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = "SHOE blue", mode = "keyword", k = 100 }));
        Assert.Equal(Products / 2 * Photos, both.GetProperty("results").GetArrayLength());
        Assert.All(both.GetProperty("results").EnumerateArray(), r => Assert.Equal("blue", r.GetProperty("metadata").GetProperty("colour").GetString()));

        // Hybrid: a query naming a SKU puts its product first whatever the text's vector finds; both ranks are said.
        for (var p = 0; p < Products; p++)
        {
            var hybrid = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = $"runner AJ{p}-5550{p:D2}", mode = "hybrid", k = 10 }));
            var first = hybrid.GetProperty("results")[0];
            Assert.Equal($"P{p:D2}", first.GetProperty("product").GetString());
            Assert.InRange(first.GetProperty("keyword_rank").GetInt32(), 1, Photos);
            Assert.True(first.TryGetProperty("vector_rank", out _));
            var fused = hybrid.GetProperty("results").EnumerateArray().Select(r =>
                (r.GetProperty("vector_rank").ValueKind == JsonValueKind.Number ? 1.0 / (60 + r.GetProperty("vector_rank").GetInt32()) : 0)
                + (r.GetProperty("keyword_rank").ValueKind == JsonValueKind.Number ? 1.0 / (60 + r.GetProperty("keyword_rank").GetInt32()) : 0)).ToList();
            Assert.Equal(fused, hybrid.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("score").GetDouble()), new Tolerance(1e-12));
            Assert.Equal(fused.OrderDescending(), fused);
            // Items found only by vector have no keyword rank (null, not absent).
            Assert.Contains(hybrid.GetProperty("results").EnumerateArray(), r => r.GetProperty("keyword_rank").ValueKind == JsonValueKind.Null);

            var grouped = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = $"AJ{p}-5550{p:D2}", mode = "hybrid", k = 3, group_by = "product" }));
            Assert.Equal($"P{p:D2}", grouped.GetProperty("results")[0].GetProperty("product").GetString());
        }

        // A vector search never says ranks; a composed query's text terms are its words in hybrid mode.
        var plain = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = "runner", k = 3 }));
        Assert.False(plain.GetProperty("results")[0].TryGetProperty("vector_rank", out _));
        var composed = await Json(await client.PostAsJsonAsync(Path("/search"),
            new { query = new object[] { new { item_id = "p07-0" }, new { text = "AJ3-555003", weight = 0.2 } }, mode = "hybrid", k = 5 }));
        Assert.Equal("P03", composed.GetProperty("results")[0].GetProperty("product").GetString());
        Assert.DoesNotContain(composed.GetProperty("results").EnumerateArray(), r => r.GetProperty("id").GetString() == "p07-0");
    }

    [DatabaseFact]
    public async Task Products_and_texts_come_in_by_put_import_and_the_indexer_and_show_on_the_item()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var folder = new TempDirectory("products-in");
        var vector = string.Join(",", Enumerable.Range(0, 512).Select(i => (i % 7 == 0 ? 1 : 0).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var lines = folder.Combine("vectors.jsonl");
        await File.WriteAllLinesAsync(lines, [
            $"{{\"id\": \"j1\", \"embedding\": [{vector}], \"product\": \"PJ\", \"text\": \"Jacket XJ-9000b\"}}",
            $"{{\"id\": \"j2\", \"embedding\": [{vector}], \"product\": 5}}",
            $"{{\"id\": \"j3\", \"embedding\": [{vector}], \"text\": \"\"}}"]);
        var (exit, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "import", lines], null, ("DATABASE_URL", database.Url));
        Assert.True(exit == 1, $"{exit}\n{output}\n{error}");
        Assert.Contains("line 2: \"product\" must be a string", output, StringComparison.Ordinal);
        Assert.Contains("line 3: the text is blank", output, StringComparison.Ordinal);

        await database.ExecuteAsync($"CREATE TABLE source (id text, embedding real[], product text, text text, metadata jsonb); " +
            $"INSERT INTO source VALUES ('d1', ARRAY[{vector}]::real[], 'PD', 'Boot model ZZ-1', '{{\"shop\": \"s\"}}')");
        (exit, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "import", "--from-database", database.Url,
            "--query", "SELECT id, embedding, metadata, product, text FROM source"], null, ("DATABASE_URL", database.Url));
        Assert.True(exit == 0, $"{exit}\n{output}\n{error}");

        var images = folder.Combine("images");
        Directory.CreateDirectory(images);
        File.Copy(SharedData.Image("chelsea.png"), System.IO.Path.Combine(images, "cat.png"));
        File.Copy(SharedData.Image("coffee.png"), System.IO.Path.Combine(images, "cup.png"));
        var manifest = folder.Combine("manifest.jsonl");
        await File.WriteAllLinesAsync(manifest, [
            """{"id": "m1", "path": "images/cat.png", "product": "PM", "text": "Cat poster CP-77", "metadata": {"kind": "poster"}}""",
            """{"id": "m2", "path": "images/cup.png", "product": "PM"}"""]);
        (exit, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", "--manifest", manifest], null,
            ("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false"));
        Assert.True(exit == 0, $"{exit}\n{output}\n{error}");

        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        using (var form = ServiceFactory.Form(await File.ReadAllBytesAsync(SharedData.Image("astronaut.png")), fileName: "astronaut.png"))
        {
            form.Add(new StringContent("PA"), "product");
            form.Add(new StringContent("Astronaut figure AF-1"), "text");
            Assert.Equal(HttpStatusCode.Created, (await client.PutAsync(Path("/items/a1"), form)).StatusCode);
        }

        foreach (var (id, product, text) in new[] { ("j1", "PJ", "Jacket XJ-9000b"), ("d1", "PD", "Boot model ZZ-1"), ("m1", "PM", "Cat poster CP-77"), ("m2", "PM", null), ("a1", "PA", "Astronaut figure AF-1") })
        {
            var item = await Json(await client.GetAsync(Path($"/items/{id}")));
            Assert.Equal(product, item.GetProperty("product").GetString());
            Assert.Equal(text, item.GetProperty("text").ValueKind == JsonValueKind.Null ? null : item.GetProperty("text").GetString());
        }

        Assert.Equal("poster", (await Json(await client.GetAsync(Path("/items/m1")))).GetProperty("metadata").GetProperty("kind").GetString());
        foreach (var (words, id) in new[] { ("xj-9000b", "j1"), ("ZZ-1", "d1"), ("poster CP-77", "m1"), ("AF-1", "a1") })
        {
            var found = await Json(await client.PostAsJsonAsync(Path("/search"), new { text = words, mode = "keyword" }));
            Assert.Equal([id], found.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        }

        // A rerun of the manifest with a changed product writes it (the item's product is part of what "unchanged" compares).
        await File.WriteAllLinesAsync(manifest, ["""{"id": "m2", "path": "images/cup.png", "product": "PN"}"""]);
        (exit, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", "--manifest", manifest], null,
            ("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false"));
        Assert.True(exit == 0, $"{exit}\n{output}\n{error}");
        Assert.Equal("PN", (await Json(await client.GetAsync(Path("/items/m2")))).GetProperty("product").GetString());
    }

    private sealed class GroupComparer : IEqualityComparer<(string Product, List<string> Items)>
    {
        public bool Equals((string Product, List<string> Items) x, (string Product, List<string> Items) y) => x.Product == y.Product && x.Items.SequenceEqual(y.Items);

        public int GetHashCode((string Product, List<string> Items) obj) => obj.Product.GetHashCode(StringComparison.Ordinal);
    }

    private sealed class Tolerance(double epsilon) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= epsilon;

        public int GetHashCode(double obj) => 0;
    }
}

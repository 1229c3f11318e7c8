using System.Net;
using System.Net.Http.Json;
using System.Numerics.Tensors;
using System.Text.Json;
using EmbeddingService.Classification;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// A catalogue that checks itself, from its stored vectors: duplicates (exact copies apart, near ones within the
/// distance, never those just beyond), found on PUT and by the duplicates command, paged stably and resolved; zero-shot
/// labels scored as the test computes them from /embed-text; the tag command writing the test's own argmax.
/// </summary>
public sealed class CatalogueCheckTests
{
    private static Uri Path(string path) => new(path, UriKind.Relative);

    private static Task<JsonElement> Json(HttpResponseMessage response) => TestVectors.JsonAsync(response);

    private static float[] Unit(float[] vector) => TestVectors.Unit(vector);

    private static float[] Gaussian(Random random) => TestVectors.Gaussian(random);

    /// <summary>A unit vector at exactly <paramref name="distance"/> (1 - cosine) from <paramref name="from"/>.</summary>
    private static float[] At(float[] from, double distance, Random random)
    {
        var other = Gaussian(random);
        var along = TensorPrimitives.Dot(other, from);
        var orthogonal = Unit([.. other.Zip(from, (o, f) => o - (along * f))]);
        var cos = 1 - distance;
        var sin = Math.Sqrt(1 - (cos * cos));
        return [.. from.Zip(orthogonal, (f, o) => (float)((cos * f) + (sin * o)))];
    }

    private static List<(string Group, bool Exact, string[] Items, string Keep)> Groups(JsonElement page) =>
        [.. page.GetProperty("groups").EnumerateArray().Select(g => (g.GetProperty("group").GetString()!, g.GetProperty("exact").GetBoolean(),
            g.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).Order(StringComparer.Ordinal).ToArray(), g.GetProperty("keep").GetString()!))];

    [DatabaseFact]
    public async Task Duplicates_are_found_on_put_and_by_the_command_exact_copies_apart_edges_respected_pages_stable_and_resolved()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var random = new Random(21);

        // Exact copies: the same photo three times (the first is the oldest, so the one to keep).
        var photo = await File.ReadAllBytesAsync(SharedData.Image("coffee.png"));
        foreach (var id in new[] { "cup-1", "cup-2", "cup-3" })
        {
            var put = await Json(await client.PutAsync(Path($"/items/{id}"), ServiceFactory.Form(photo, fileName: "coffee.png")));
            Assert.Equal(id == "cup-1" ? 0 : 1, Math.Min(1, put.GetProperty("near_duplicates").GetArrayLength()));
        }

        // Near ones: b within 0.006 of a, c within 0.006 of b (a chain, one group), d at 0.009 of e (in), f at 0.011 of e (out),
        // g at 0.015 of e (out). Their PUT answers name what they are near.
        var a = Gaussian(random);
        var b = At(a, 0.006, random);
        var c = At(b, 0.006, random);
        var e = Gaussian(random);
        var vectors = new (string Id, float[] Vector)[] { ("a", a), ("b", b), ("c", c), ("e", e), ("d", At(e, 0.009, random)), ("f", At(e, 0.011, random)), ("g", At(e, 0.015, random)) };
        foreach (var (id, vector) in vectors)
        {
            var put = await Json(await client.PutAsJsonAsync(Path($"/items/{id}"), new { vector }));
            var near = put.GetProperty("near_duplicates").EnumerateArray().Select(n => n.GetProperty("id").GetString()).ToList();
            switch (id)
            {
                case "b": Assert.Equal(["a"], near); Assert.InRange(put.GetProperty("near_duplicates")[0].GetProperty("distance").GetDouble(), 0.0055, 0.0065); break;
                case "c": Assert.Contains("b", near); break;
                case "d": Assert.Equal(["e"], near); break;
                default: Assert.Empty(near); break;
            }
        }

        var page = await Json(await client.GetAsync(Path("/duplicates")));
        Assert.Equal(0, page.GetProperty("unscanned").GetInt64());
        Assert.Equal(0.01, page.GetProperty("max_distance").GetDouble());
        var groups = Groups(page);
        Assert.Equal(3, groups.Count);
        var exact = Assert.Single(groups, g => g.Exact);
        Assert.Equal(["cup-1", "cup-2", "cup-3"], exact.Items);
        Assert.Equal("cup-1", exact.Keep);
        Assert.StartsWith("exact:", exact.Group, StringComparison.Ordinal);
        Assert.Contains(groups, g => !g.Exact && g.Items.SequenceEqual(["a", "b", "c"]) && g.Keep == "a");
        Assert.Contains(groups, g => !g.Exact && g.Items.SequenceEqual(["d", "e"]) && g.Keep == "e");
        var chain = page.GetProperty("groups").EnumerateArray().Single(g => g.GetProperty("keep").GetString() == "a");
        Assert.InRange(chain.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetString() == "b").GetProperty("distance").GetDouble(), 0.0055, 0.0065);

        // Vectors imported in bulk are not checked on the way in: unscanned until the command runs, then grouped as the API groups them.
        using var folder = new TempDirectory("duplicates");
        var lines = folder.Combine("more.jsonl");
        var h = Gaussian(random);
        await File.WriteAllLinesAsync(lines, [
            JsonSerializer.Serialize(new { id = "h", embedding = h }),
            JsonSerializer.Serialize(new { id = "i", embedding = At(h, 0.004, random) }),
            JsonSerializer.Serialize(new { id = "j", embedding = At(a, 0.003, random) }),
            JsonSerializer.Serialize(new { id = "k", embedding = At(h, 0.0105, random) })]);
        var imported = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "import", lines], null, ("DATABASE_URL", database.Url));
        Assert.True(imported.ExitCode == 0, imported.Error);
        Assert.Equal(4, (await Json(await client.GetAsync(Path("/duplicates")))).GetProperty("unscanned").GetInt64());
        var output = folder.Combine("groups.jsonl");
        var run = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "duplicates", "--out", output], null, ("DATABASE_URL", database.Url));
        Assert.True(run.ExitCode == 0, $"{run.Output}\n{run.Error}");
        Assert.Contains("4 groups within a cosine distance of 0.01 (1 of exact copies, 3 near)", run.Output.Replace("duplicate groups", "groups", StringComparison.Ordinal), StringComparison.Ordinal);
        var all = await Json(await client.GetAsync(Path("/duplicates")));
        Assert.Equal(0, all.GetProperty("unscanned").GetInt64());
        var final = Groups(all);
        Assert.Contains(final, g => g.Items.SequenceEqual(["a", "b", "c", "j"]));
        Assert.Contains(final, g => g.Items.SequenceEqual(["h", "i"]));
        Assert.DoesNotContain(final, g => g.Items.Contains("k") || g.Items.Contains("f") || g.Items.Contains("g"));
        Assert.Equal(final.Select(g => g.Group), (await File.ReadAllLinesAsync(output)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("group").GetString()));

        // Pages of one are the same groups in the same order, and so is a second call.
        var paged = new List<string>();
        string? after = null;
        do
        {
            var one = await Json(await client.GetAsync(Path($"/duplicates?limit=1{(after is null ? string.Empty : $"&after={Uri.EscapeDataString(after)}")}")));
            paged.AddRange(Groups(one).Select(g => g.Group));
            after = one.GetProperty("next").ValueKind == JsonValueKind.Null ? null : one.GetProperty("next").GetString();
        }
        while (after is not null);
        Assert.Equal(final.Select(g => g.Group), paged);
        Assert.Equal(final.Select(g => g.Group), Groups(await Json(await client.GetAsync(Path("/duplicates")))).Select(g => g.Group));

        // A wider distance needs its own scan (PUT and the default run recorded pairs within 0.01): then f joins d and e.
        Assert.Equal(14L, await Unscanned(0.012));
        var wide = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "duplicates", "--max-distance", "0.012"], null, ("DATABASE_URL", database.Url));
        Assert.True(wide.ExitCode == 0, wide.Error);
        Assert.Equal(0L, await Unscanned(0.012));
        Assert.Contains(Groups(await Json(await client.GetAsync(Path("/duplicates?max_distance=0.012")))), g => g.Items.SequenceEqual(["d", "e", "f"]));
        Assert.DoesNotContain(Groups(await Json(await client.GetAsync(Path("/duplicates")))), g => g.Items.Contains("f"));

        // Resolve deletes exactly what it names, once every kept item exists; nothing else is touched.
        var before = await database.ScalarAsync<long>("SELECT count(*) FROM items");
        var refused = await client.PostAsJsonAsync(Path("/duplicates/resolve"), new { keep = new[] { "cup-1", "nope" }, delete = new[] { "cup-2" } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("'nope'", (await refused.Content.ReadAsStringAsync()), StringComparison.Ordinal);
        Assert.Equal(before, await database.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsJsonAsync(Path("/duplicates/resolve"), new { keep = new[] { "a" }, delete = new[] { "a" } })).StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsJsonAsync(Path("/duplicates/resolve"), new { keep = Array.Empty<string>(), delete = new[] { "b" } })).StatusCode);
        var resolved = await Json(await client.PostAsJsonAsync(Path("/duplicates/resolve"), new { keep = new[] { "cup-1" }, delete = new[] { "cup-2", "cup-3", "gone" } }));
        Assert.Equal(["cup-2", "cup-3"], resolved.GetProperty("deleted").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal(["gone"], resolved.GetProperty("missing").EnumerateArray().Select(d => d.GetString()));
        Assert.Equal(before - 2, await database.ScalarAsync<long>("SELECT count(*) FROM items"));
        Assert.DoesNotContain(Groups(await Json(await client.GetAsync(Path("/duplicates")))), g => g.Exact);

        foreach (var bad in new[] { "max_distance=0", "max_distance=0.2", "max_distance=x", "limit=0", "limit=1001" })
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.GetAsync(Path($"/duplicates?{bad}"))).StatusCode);
        }

        async Task<long> Unscanned(double distance) =>
            (await Json(await client.GetAsync(Path($"/duplicates?max_distance={distance.ToString(System.Globalization.CultureInfo.InvariantCulture)}")))).GetProperty("unscanned").GetInt64();
    }

    [DatabaseFact]
    public async Task Classify_scores_are_the_softmax_of_logit_scale_times_the_cosine_to_each_labels_normalized_prompt_mean()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings(("LOGIT_SCALE", "30")));
        using var client = await factory.ReadyClientAsync();
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsync(Path("/items/cat"), ServiceFactory.Form(await File.ReadAllBytesAsync(SharedData.Image("chelsea.png")), fileName: "chelsea.png"))).StatusCode);
        var stored = (await Json(await client.GetAsync(Path("/items/cat?include=embedding")))).GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        string[] labels = ["cat", "coffee cup", "astronaut", "camera"];

        async Task<double[]> ExpectedAsync(float[] subject, IReadOnlyList<string> templates, double scale)
        {
            var sims = new double[labels.Length];
            for (var l = 0; l < labels.Length; l++)
            {
                var texts = templates.Select(t => t.Replace("{}", labels[l], StringComparison.Ordinal)).ToArray();
                var embedded = (await Json(await client.PostAsJsonAsync(Path("/embed-text"), new { texts }))).GetProperty("embeddings").EnumerateArray()
                    .Select(e => Unit(e.EnumerateArray().Select(v => v.GetSingle()).ToArray())).ToList();
                var mean = Unit([.. Enumerable.Range(0, 512).Select(d => embedded.Sum(e => e[d]) / embedded.Count)]);
                sims[l] = TensorPrimitives.CosineSimilarity(subject, mean);
            }

            return sims;
        }

        void AssertScores(JsonElement answer, double[] sims, double scale)
        {
            var exp = sims.Select(s => Math.Exp(scale * (s - sims.Max()))).ToArray();
            var ranked = answer.GetProperty("labels").EnumerateArray().ToList();
            Assert.Equal(labels.Length, ranked.Count);
            Assert.Equal(ranked.Select(r => r.GetProperty("score").GetDouble()).OrderDescending(), ranked.Select(r => r.GetProperty("score").GetDouble()));
            foreach (var r in ranked)
            {
                var l = Array.IndexOf(labels, r.GetProperty("label").GetString());
                Assert.InRange(r.GetProperty("similarity").GetDouble() - sims[l], -1e-5, 1e-5);
                Assert.InRange(r.GetProperty("score").GetDouble() - (exp[l] / exp.Sum()), -1e-5, 1e-5);
            }
        }

        string[] templates = ["a photo of a {}.", "a blurry picture of the {}."];
        var byItem = await Json(await client.PostAsJsonAsync(Path("/classify"), new { item_id = "cat", labels, templates }));
        AssertScores(byItem, await ExpectedAsync(stored, templates, 30), 30);

        // The default templates are the product-photo set; a vector subject and a photo subject score the same way.
        var byDefault = await Json(await client.PostAsJsonAsync(Path("/classify"), new { vector = stored, labels }));
        AssertScores(byDefault, await ExpectedAsync(stored, ZeroShot.ProductTemplates, 30), 30);
        using var form = ServiceFactory.Form(await File.ReadAllBytesAsync(SharedData.Image("chelsea.png")), fileName: "chelsea.png");
        form.Add(new StringContent(JsonSerializer.Serialize(labels)), "labels");
        form.Add(new StringContent(JsonSerializer.Serialize(templates)), "templates");
        var photo = (await Json(await client.PostAsync(Path("/embed-image"), ServiceFactory.Form(await File.ReadAllBytesAsync(SharedData.Image("chelsea.png")), fileName: "chelsea.png"))))
            .GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        AssertScores(await Json(await client.PostAsync(Path("/classify"), form)), await ExpectedAsync(photo, templates, 30), 30);

        (object Body, HttpStatusCode Status)[] bad =
        [
            (new { item_id = "cat", labels = new[] { "one" } }, HttpStatusCode.UnprocessableEntity),
            (new { item_id = "cat", labels = new[] { "a", "a" } }, HttpStatusCode.UnprocessableEntity),
            (new { item_id = "cat", labels = new[] { "a", " " } }, HttpStatusCode.UnprocessableEntity),
            (new { item_id = "cat", labels, templates = new[] { "no slot" } }, HttpStatusCode.UnprocessableEntity),
            (new { item_id = "cat", vector = stored, labels }, HttpStatusCode.UnprocessableEntity),
            (new { labels }, HttpStatusCode.UnprocessableEntity),
            (new { item_id = "missing", labels }, HttpStatusCode.NotFound),
            (new { item_id = "cat", labels = Enumerable.Range(0, 1001).Select(i => $"l{i}").ToArray() }, HttpStatusCode.UnprocessableEntity),
            (new { image = "https://example.com/cat.jpg", labels }, HttpStatusCode.UnprocessableEntity),
        ];
        foreach (var (body, status) in bad)
        {
            var response = await client.PostAsJsonAsync(Path("/classify"), body);
            Assert.True(response.StatusCode == status, $"{JsonSerializer.Serialize(body)[..Math.Min(120, JsonSerializer.Serialize(body).Length)]}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.False(string.IsNullOrEmpty(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString()));
        }
    }

    [DatabaseFact]
    public async Task Tag_writes_each_items_argmax_label_from_its_stored_vector_names_those_below_min_score_and_resumes()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var factory = new ServiceFactory(database.ServiceSettings());
        using var client = await factory.ReadyClientAsync();
        var random = new Random(8);
        var items = Enumerable.Range(0, 40).Select(i => ($"t{i:D2}", Gaussian(random))).ToList();
        foreach (var (id, vector) in items)
        {
            Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(Path($"/items/{id}"), new { vector, metadata = new { shelf = id[^1] % 2 == 0 ? "even" : "odd" } })).StatusCode);
        }

        string[] labels = ["red shoe", "blue bag", "green hat", "black watch"];
        string[] templates = ["a photo of a {}.", "{}"];
        using var folder = new TempDirectory("tag");
        await File.WriteAllLinesAsync(folder.Combine("labels.txt"), ["# colours and kinds", .. labels, ""]);
        await File.WriteAllLinesAsync(folder.Combine("templates.txt"), templates);
        var labelVectors = new List<float[]>();
        foreach (var label in labels)
        {
            var embedded = (await Json(await client.PostAsJsonAsync(Path("/embed-text"), new { texts = templates.Select(t => t.Replace("{}", label, StringComparison.Ordinal)).ToArray() })))
                .GetProperty("embeddings").EnumerateArray().Select(e => Unit(e.EnumerateArray().Select(v => v.GetSingle()).ToArray())).ToList();
            labelVectors.Add(Unit([.. Enumerable.Range(0, 512).Select(d => embedded.Sum(e => e[d]) / embedded.Count)]));
        }

        var expected = new Dictionary<string, (string Label, double Score)>();
        foreach (var (id, _) in items)
        {
            var stored = (await Json(await client.GetAsync(Path($"/items/{id}?include=embedding")))).GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var sims = labelVectors.Select(l => (double)TensorPrimitives.CosineSimilarity(stored, l)).ToArray();
            var best = Array.IndexOf(sims, sims.Max());
            expected[id] = (labels[best], 1 / sims.Sum(s => Math.Exp(100 * (s - sims[best]))));
        }

        (int ExitCode, string Output, string Error) Tag(params string[] extra) => Processes.RunAsync("dotnet",
            [Processes.ServiceAssembly(), "tag", "--labels", folder.Combine("labels.txt"), "--templates", folder.Combine("templates.txt"), "--key", "kind", .. extra], null,
            ("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false")).GetAwaiter().GetResult();

        // A threshold that some items miss: those are named and left alone; a dry run writes nothing.
        // Between the 10th and 11th lowest scores: no item sits at the edge.
        var sorted = expected.Values.Select(e => e.Score).Order().ToList();
        var threshold = (sorted[9] + sorted[10]) / 2;
        var dry = Tag("--min-score", threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture), "--dry-run", "--filter", "{\"shelf\": \"even\"}");
        Assert.True(dry.ExitCode == 0, $"{dry.Output}\n{dry.Error}");
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE metadata ? 'kind'"));
        var even = expected.Where(e => e.Key[^1] % 2 == 0).ToList();
        Assert.Contains($"would tag {even.Count(e => e.Value.Score >= threshold)} of {even.Count} items", dry.Output, StringComparison.Ordinal);

        var run = Tag("--min-score", threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(run.ExitCode == 0, $"{run.Output}\n{run.Error}");
        foreach (var (id, (label, score)) in expected)
        {
            var metadata = (await Json(await client.GetAsync(Path($"/items/{id}")))).GetProperty("metadata");
            if (score >= threshold)
            {
                Assert.Equal(label, metadata.GetProperty("kind").GetString());
                Assert.Equal(id[^1] % 2 == 0 ? "even" : "odd", metadata.GetProperty("shelf").GetString());
            }
            else
            {
                Assert.False(metadata.TryGetProperty("kind", out _), id);
                Assert.Contains($"below --min-score {id}: best {label}", run.Output, StringComparison.Ordinal);
            }
        }

        // A rerun has nothing to write.
        var again = Tag("--min-score", threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("(0 written,", again.Output, StringComparison.Ordinal);
        Assert.Equal(2, Tag("--labels-missing").ExitCode);
    }

    [DatabaseFact]
    public async Task The_indexer_counts_items_arriving_with_a_stored_near_duplicate_and_skip_duplicates_leaves_them_out()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var first = new TempDirectory("index-first");
        using var second = new TempDirectory("index-second");
        File.Copy(SharedData.Image("coffee.png"), first.Combine("coffee.png"));
        File.Copy(SharedData.Image("chelsea.png"), first.Combine("chelsea.png"));
        File.Copy(SharedData.Image("coffee.png"), second.Combine("coffee-again.png"));
        File.Copy(SharedData.Image("astronaut.png"), second.Combine("astronaut.png"));
        (string, string)[] environment = [("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false")];
        var run = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", first.Path], null, environment);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.DoesNotContain("near duplicates", run.Output, StringComparison.Ordinal);

        var skipped = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", second.Path, "--skip-duplicates"], null, environment);
        Assert.True(skipped.ExitCode == 0, skipped.Error);
        Assert.Contains("near duplicates: 1 arrived with a stored item within the duplicate distance, 1 not stored (--skip-duplicates)", skipped.Output, StringComparison.Ordinal);
        Assert.Contains("not stored coffee-again.png: of coffee.png (distance 0.0000)", skipped.Output, StringComparison.Ordinal);
        Assert.Equal(["astronaut.png", "chelsea.png", "coffee.png"], await IdsAsync(database));

        var kept = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", second.Path], null, environment);
        Assert.Contains("near duplicates: 1 arrived with a stored item within the duplicate distance; see GET /duplicates", kept.Output, StringComparison.Ordinal);
        Assert.Equal(["astronaut.png", "chelsea.png", "coffee-again.png", "coffee.png"], await IdsAsync(database));
    }

    private static async Task<string[]> IdsAsync(TestDatabase database) => (await database.ScalarAsync<string[]>("SELECT array_agg(id ORDER BY id) FROM items"));
}

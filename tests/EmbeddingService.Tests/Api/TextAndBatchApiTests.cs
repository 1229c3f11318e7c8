using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using OpenAI;
using OpenAI.Embeddings;

namespace EmbeddingService.Tests.Api;

/// <summary>POST /embed-text, /embed-images and the OpenAI-compatible /v1/embeddings, on the shared reference model.</summary>
public sealed class TextAndBatchApiTests
{
    private static Dictionary<string, string> ReferenceModel(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string> { ["MODEL_DIR"] = SharedData.ReferenceModel, ["MODEL_AUTO_DOWNLOAD"] = "false" };
        foreach (var (key, value) in extra) settings[key] = value;
        return settings;
    }

    private static Dictionary<string, float[]> ReferenceTexts() => File.ReadLines(Path.Combine(SharedData.Root, "reference", "text-embeddings.jsonl"))
        .Select(line => JsonDocument.Parse(line).RootElement)
        .ToDictionary(e => e.GetProperty("text").GetString()!, e => e.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray());

    private static float[] Vector(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetSingle())];

    [SharedDataFact]
    public async Task Text_embeddings_equal_the_reference_one_by_one_and_as_a_batch_in_order()
    {
        var reference = ReferenceTexts();
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();

        var batch = await client.PostAsJsonAsync(new Uri("/embed-text", UriKind.Relative), new { texts = reference.Keys.ToArray() });
        Assert.Equal(HttpStatusCode.OK, batch.StatusCode);
        using var batchBody = JsonDocument.Parse(await batch.Content.ReadAsStringAsync());
        var batchVectors = batchBody.RootElement.GetProperty("embeddings").EnumerateArray().Select(Vector).ToList();
        Assert.Equal("CLIP-ViT-B/32", batchBody.RootElement.GetProperty("model").GetString());

        var i = 0;
        foreach (var (text, expected) in reference)
        {
            var single = await client.PostAsJsonAsync(new Uri("/embed-text", UriKind.Relative), new { text });
            using var body = JsonDocument.Parse(await single.Content.ReadAsStringAsync());
            Assert.Equal(["embedding", "model", "device"], body.RootElement.EnumerateObject().Select(p => p.Name));
            var vector = Vector(body.RootElement.GetProperty("embedding"));
            Assert.InRange(1 - Models.Cosine(expected, vector), -1e-6, 1e-6);
            Assert.InRange(1 - Models.Cosine(vector, batchVectors[i++]), -1e-6, 1e-6);
        }
    }

    /// <summary>A short text run at its own length equals the same text padded to 77 positions in a batch.</summary>
    [SharedDataFact]
    public void A_text_run_at_its_real_length_equals_the_77_position_run()
    {
        using var model = Models.Load(SharedData.ReferenceModel);
        Assert.True(model.Text.HasDynamicSequence);
        var ids = new long[2 * 77];
        model.Tokenizer.Encode("red leather handbag", ids.AsSpan(0, 77));
        model.Tokenizer.Encode(string.Join(' ', Enumerable.Repeat("handbag", 100)), ids.AsSpan(77, 77));
        var alone = new float[512];
        model.Text.Embed(ids[..77].ToArray(), 1, alone);
        // With a 77-token text beside it, the batch runs at 77: the short text is padded.
        var padded = new float[2 * 512];
        model.Text.Embed(ids, 2, padded);
        Assert.InRange(1 - Models.Cosine(alone, padded.AsSpan(0, 512)), -1e-6, 1e-6);
    }

    [SharedDataTheory]
    [InlineData("{not json", 400, "not valid JSON")]
    [InlineData("[\"a\"]", 422, "JSON object")]
    [InlineData("{}", 422, "needs \\\"text\\\"")]
    [InlineData("{\"text\": 5}", 422, "must be a string")]
    [InlineData("{\"text\": \"   \"}", 422, "is empty")]
    [InlineData("{\"texts\": []}", 422, "is empty")]
    [InlineData("{\"texts\": [\"a\", null]}", 422, "texts[1]")]
    [InlineData("{\"text\": \"a\", \"texts\": [\"b\"]}", 422, "not both")]
    [InlineData("{\"texts\": [\"a\", \"b\", \"c\", \"d\"]}", 422, "MAX_BATCH_ITEMS")]
    [InlineData("{\"text\": \"0123456789ab\"}", 413, "MAX_TEXT_CHARS")]
    public async Task Bad_text_requests_get_a_4xx_with_a_detail(string body, int status, string detail)
    {
        await using var factory = new ServiceFactory(ReferenceModel(("MAX_BATCH_ITEMS", "3"), ("MAX_TEXT_CHARS", "10")));
        using var client = await factory.StartedClientAsync();
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        var response = await client.PostAsync(new Uri("/embed-text", UriKind.Relative), content);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Contains(detail, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [SharedDataFact]
    public async Task Several_images_are_embedded_in_order_as_one_by_one()
    {
        string[] names = ["chelsea.png", "coffee-progressive.jpg", "camera.png", "chelsea-exif6.jpg"];
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();
        using var form = Files(names.Select(n => (n, File.ReadAllBytes(SharedData.Image(n)))));
        var response = await client.PostAsync(new Uri("/embed-images", UriKind.Relative), form);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var vectors = body.RootElement.GetProperty("embeddings").EnumerateArray().Select(Vector).ToList();
        Assert.Equal(names.Length, vectors.Count);
        for (var i = 0; i < names.Length; i++)
        {
            using var single = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image(names[i])));
            using var one = JsonDocument.Parse(await (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), single)).Content.ReadAsStringAsync());
            Assert.InRange(1 - Models.Cosine(Vector(one.RootElement.GetProperty("embedding")), vectors[i]), -1e-6, 1e-6);
        }
    }

    [SharedDataFact]
    public async Task A_batch_with_bad_images_is_refused_whole_naming_each_bad_part()
    {
        await using var factory = new ServiceFactory(ReferenceModel(("MAX_BATCH_ITEMS", "4")));
        using var client = await factory.StartedClientAsync();
        using var form = Files([
            ("good.png", File.ReadAllBytes(SharedData.Image("chelsea.png"))),
            ("broken.jpg", File.ReadAllBytes(SharedData.Image("truncated.jpg"))),
            ("notes.txt", Encoding.UTF8.GetBytes("not an image")),
        ]);
        var response = await client.PostAsync(new Uri("/embed-images", UriKind.Relative), form);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("part 1 (broken.jpg)", text, StringComparison.Ordinal);
        Assert.Contains("part 2 (notes.txt)", text, StringComparison.Ordinal);
        Assert.DoesNotContain("good.png", text, StringComparison.Ordinal);

        using var tooMany = Files(Enumerable.Range(0, 5).Select(i => ($"{i}.png", File.ReadAllBytes(SharedData.Image("camera.png")))));
        var many = await client.PostAsync(new Uri("/embed-images", UriKind.Relative), tooMany);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, many.StatusCode);
        Assert.Contains("At most 4", await many.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var none = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("camera.png")), field: "file");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsync(new Uri("/embed-images", UriKind.Relative), none)).StatusCode);
    }

    /// <summary>The official OpenAI .NET client calls the service unchanged (over real HTTP, as users run it).</summary>
    [SharedDataFact]
    public async Task The_official_OpenAI_client_gets_the_reference_text_embeddings()
    {
        var reference = ReferenceTexts();
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, ReferenceModel(("LOG_LEVEL", "warning")));
        var client = new EmbeddingClient("clip-vit-base-patch32", new ApiKeyCredential("not-checked"),
            new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{port}/v1") });

        var one = await client.GenerateEmbeddingAsync("a photo of a cat");
        Assert.InRange(1 - Models.Cosine(reference["a photo of a cat"], one.Value.ToFloats().Span), -1e-6, 1e-6);

        var texts = reference.Keys.Take(5).ToList();
        var many = await client.GenerateEmbeddingsAsync(texts);
        Assert.Equal(texts.Count, many.Value.Count);
        for (var i = 0; i < texts.Count; i++)
        {
            Assert.Equal(i, many.Value[i].Index);
            Assert.InRange(1 - Models.Cosine(reference[texts[i]], many.Value[i].ToFloats().Span), -1e-6, 1e-6);
        }

        Assert.True(many.Value.Usage.InputTokenCount > texts.Count * 2);
        var shortened = await client.GenerateEmbeddingAsync("a photo of a cat", new EmbeddingGenerationOptions { Dimensions = 64 });
        Assert.Equal(64, shortened.Value.ToFloats().Length);
    }

    [SharedDataFact]
    public async Task OpenAI_route_takes_images_as_data_uris_and_answers_errors_in_OpenAI_shape()
    {
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();
        var image = File.ReadAllBytes(SharedData.Image("chelsea.png"));
        var request = new { model = "clip", input = new object[] { "a cat", new { type = "image_url", image_url = new { url = "data:image/png;base64," + Convert.ToBase64String(image) } } } };
        var response = await client.PostAsJsonAsync(new Uri("/v1/embeddings", UriKind.Relative), request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var fromUri = Vector(body.RootElement.GetProperty("data")[1].GetProperty("embedding"));
        using var form = ServiceFactory.Form(image);
        using var direct = JsonDocument.Parse(await (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form)).Content.ReadAsStringAsync());
        Assert.InRange(1 - Models.Cosine(Vector(direct.RootElement.GetProperty("embedding")), fromUri), -1e-6, 1e-6);

        var remote = await client.PostAsJsonAsync(new Uri("/v1/embeddings", UriKind.Relative),
            new { input = new object[] { new { type = "image_url", image_url = new { url = "https://example.com/cat.jpg" } } } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, remote.StatusCode);
        using var error = JsonDocument.Parse(await remote.Content.ReadAsStringAsync());
        var shape = error.RootElement.GetProperty("error");
        Assert.Contains("never fetches URLs", shape.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("invalid_request_error", shape.GetProperty("type").GetString());
        Assert.Equal("input", shape.GetProperty("param").GetString());
    }

    [SharedDataFact]
    public async Task A_tower_left_out_by_MODEL_TOWERS_answers_503_saying_so()
    {
        await using (var visionOnly = new ServiceFactory(ReferenceModel(("MODEL_TOWERS", "vision"))))
        {
            using var client = await visionOnly.StartedClientAsync();
            var text = await client.PostAsJsonAsync(new Uri("/embed-text", UriKind.Relative), new { text = "a cat" });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, text.StatusCode);
            Assert.Contains("MODEL_TOWERS", await text.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            using var form = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")));
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form)).StatusCode);
        }

        await using var textOnly = new ServiceFactory(ReferenceModel(("MODEL_TOWERS", "text")));
        using var textClient = await textOnly.StartedClientAsync();
        using var image = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")));
        var refused = await textClient.PostAsync(new Uri("/embed-image", UriKind.Relative), image);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Contains("vision tower is not loaded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await textClient.PostAsJsonAsync(new Uri("/embed-text", UriKind.Relative), new { text = "a cat" })).StatusCode);
    }

    private static MultipartFormDataContent Files(IEnumerable<(string Name, byte[] Bytes)> files)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, bytes) in files)
        {
            var part = new ByteArrayContent(bytes);
            part.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            form.Add(part, "files", name);
        }

        return form;
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Api;

public sealed class ApiTests
{
    internal static Dictionary<string, string> ReferenceModel(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string> { ["MODEL_DIR"] = SharedData.ReferenceModel, ["MODEL_AUTO_DOWNLOAD"] = "false" };
        foreach (var (key, value) in extra) settings[key] = value;
        return settings;
    }

    [SharedDataFact]
    public async Task Health_info_and_docs_answer_as_the_seed_service_did()
    {
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();

        var health = await client.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("{\"status\":\"healthy\",\"model_loaded\":true,\"device\":\"cpu\"}", await health.Content.ReadAsStringAsync());

        using var info = JsonDocument.Parse(await client.GetStringAsync(new Uri("/", UriKind.Relative)));
        Assert.Equal("CLIP-ViT-B/32", info.RootElement.GetProperty("model").GetString());
        Assert.True(info.RootElement.GetProperty("synthetic_weights").GetBoolean());
        Assert.Equal(512, info.RootElement.GetProperty("embedding_dimension").GetInt32());
        Assert.Equal("cpu", info.RootElement.GetProperty("device").GetString());
        Assert.Equal("/ui/", info.RootElement.GetProperty("ui").GetString());
        foreach (var endpoint in new[] { "POST /embed-image", "POST /embed-images", "POST /embed-text", "POST /v1/embeddings", "POST /search", "GET /ui/", "GET /health/ready", "GET /metrics" })
        {
            Assert.True(info.RootElement.GetProperty("endpoints").TryGetProperty(endpoint, out _), endpoint);
        }

        // Every GET it lists without a parameter is there.
        foreach (var listed in info.RootElement.GetProperty("endpoints").EnumerateObject().Select(e => e.Name).Where(n => n.StartsWith("GET /", StringComparison.Ordinal) && !n.Contains('{', StringComparison.Ordinal)))
        {
            using var response = await client.GetAsync(new Uri(listed[4..], UriKind.Relative));
            Assert.NotEqual(System.Net.HttpStatusCode.NotFound, response.StatusCode);
        }

        var openApi = await client.GetStringAsync(new Uri("/openapi.json", UriKind.Relative));
        Assert.Contains("\"/embed-image\"", openApi, StringComparison.Ordinal);
        Assert.Contains("multipart/form-data", openApi, StringComparison.Ordinal);
        Assert.Contains("\"binary\"", openApi, StringComparison.Ordinal);
        Assert.Contains("\"/embed-text\"", openApi, StringComparison.Ordinal);
        Assert.Contains("red leather handbag", openApi, StringComparison.Ordinal);
        Assert.Contains("\"/v1/embeddings\"", openApi, StringComparison.Ordinal);
        var docs = await client.GetStringAsync(new Uri("/docs/index.html", UriKind.Relative));
        Assert.Contains("swagger", docs, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Through HTTP, every shared image gives the reference pipeline's embedding.</summary>
    [SharedDataFact]
    public async Task Embed_image_returns_the_reference_embedding_for_every_shared_image()
    {
        var expected = File.ReadLines(Path.Combine(SharedData.Root, "reference", "image-embeddings.jsonl"))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .ToDictionary(e => e.GetProperty("image").GetString()!, e => e.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray());
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();
        foreach (var (image, reference) in expected)
        {
            using var form = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image(image)), fileName: image);
            var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Matches("^receive;dur=[0-9.]+, decode;dur=[0-9.]+, preprocess;dur=[0-9.]+, queue;dur=[0-9.]+, inference;dur=[0-9.]+;desc=\"batch of [0-9]+\"$",
                string.Join(",", response.Headers.GetValues("Server-Timing")));
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(["embedding", "model", "device"], body.RootElement.EnumerateObject().Select(p => p.Name));
            Assert.Equal("CLIP-ViT-B/32", body.RootElement.GetProperty("model").GetString());
            Assert.Equal("cpu", body.RootElement.GetProperty("device").GetString());
            var embedding = body.RootElement.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            Assert.Equal(512, embedding.Length);
            Assert.InRange(1 - Models.Cosine(reference, embedding), -1e-6, 1e-5);
        }
    }

    [SharedDataTheory]
    [InlineData("truncated.jpg", "JPEG image")]
    [InlineData("", "empty")]
    [InlineData("text", "not an image in a supported format")]
    [InlineData("half-png", "PNG image is truncated")]
    public async Task Undecodable_uploads_get_400_with_the_reason(string upload, string reason)
    {
        var bytes = upload switch
        {
            "" => [],
            "text" => Encoding.UTF8.GetBytes("hello, this is not an image"),
            "half-png" => File.ReadAllBytes(SharedData.Image("coffee.png"))[..20_000],
            _ => File.ReadAllBytes(SharedData.Image(upload)),
        };
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();
        using var form = ServiceFactory.Form(bytes);
        var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
        await AssertProblem(response, HttpStatusCode.BadRequest, reason);
    }

    [SharedDataFact]
    public async Task A_missing_file_field_or_a_body_that_is_not_a_form_gets_422()
    {
        await using var factory = new ServiceFactory(ReferenceModel());
        using var client = await factory.StartedClientAsync();
        using var wrongField = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")), field: "image");
        var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), wrongField);
        var problem = await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "no field named 'file'");
        Assert.Equal("missing", problem.RootElement.GetProperty("errors")[0].GetProperty("type").GetString());

        using var json = new StringContent("{\"file\":\"x\"}", Encoding.UTF8, "application/json");
        await AssertProblem(await client.PostAsync(new Uri("/embed-image", UriKind.Relative), json), HttpStatusCode.UnprocessableEntity, "multipart/form-data");
        await AssertProblem(await client.PostAsync(new Uri("/embed-image", UriKind.Relative), null), HttpStatusCode.UnprocessableEntity, "multipart/form-data");
    }

    [SharedDataFact]
    public async Task An_upload_over_the_byte_limit_gets_413()
    {
        await using var factory = new ServiceFactory(ReferenceModel(("MAX_UPLOAD_BYTES", "100000")));
        using var client = await factory.StartedClientAsync();
        using var form = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("astronaut.png")));
        await AssertProblem(await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form), HttpStatusCode.RequestEntityTooLarge, "limit of 100,000 bytes");

        using var small = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea-exif6.jpg")));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), small)).StatusCode);
    }

    [SharedDataFact]
    public async Task An_image_over_the_pixel_limit_gets_413_from_its_header()
    {
        await using var factory = new ServiceFactory(ReferenceModel(("MAX_IMAGE_PIXELS", "100000")));
        using var client = await factory.StartedClientAsync();
        using var form = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")));
        await AssertProblem(await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form), HttpStatusCode.RequestEntityTooLarge, "451x300 = 135,300 pixels");
    }

    [SharedDataFact]
    public async Task A_full_pipeline_answers_503_with_retry_after_before_decoding()
    {
        await using var factory = new ServiceFactory(ReferenceModel(("MAX_QUEUE_DEPTH", "1")));
        using var client = await factory.StartedClientAsync();
        var state = (EmbeddingService.ModelLifecycle.ModelState)factory.Services.GetService(typeof(EmbeddingService.ModelLifecycle.ModelState))!;
        using (state.Serving!.Vision.Admit())
        {
            using var form = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")));
            var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
            await AssertProblem(response, HttpStatusCode.ServiceUnavailable, "at capacity");
            Assert.NotNull(response.Headers.RetryAfter);
        }

        using var again = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), again)).StatusCode);
    }

    [Fact]
    public async Task While_the_model_loads_health_and_embed_answer_503_with_retry_after()
    {
        // A hub that accepts connections and never answers keeps the service in its download.
        using var silentHub = new TcpListener(IPAddress.Loopback, 0);
        silentHub.Start();
        using var empty = new TempDirectory();
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = empty.Path,
            ["HF_ENDPOINT"] = $"http://127.0.0.1:{((IPEndPoint)silentHub.LocalEndpoint).Port}",
        });
        using var client = factory.CreateClient();

        var health = await client.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Equal("{\"status\":\"loading\",\"model_loaded\":false,\"device\":\"cpu\"}", await health.Content.ReadAsStringAsync());

        using var form = ServiceFactory.Form(Encoding.UTF8.GetBytes("any"));
        var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
        await AssertProblem(response, HttpStatusCode.ServiceUnavailable, "still loading");
        Assert.Equal(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task A_model_that_failed_to_load_makes_health_unhealthy_with_the_reason()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string> { ["MODEL_DIR"] = "/nonexistent/model", ["MODEL_AUTO_DOWNLOAD"] = "false" });
        using var client = await factory.StartedClientAsync();
        var health = await client.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        using var body = JsonDocument.Parse(await health.Content.ReadAsStringAsync());
        Assert.Equal("unhealthy", body.RootElement.GetProperty("status").GetString());
        Assert.Contains("MODEL_AUTO_DOWNLOAD is false", body.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var form = ServiceFactory.Form(Encoding.UTF8.GetBytes("any"));
        await AssertProblem(await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form), HttpStatusCode.ServiceUnavailable, "failed to load");
    }

    [Fact]
    public async Task Unknown_routes_and_methods_answer_problem_json_with_detail()
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string> { ["MODEL_DIR"] = "/nonexistent/model", ["MODEL_AUTO_DOWNLOAD"] = "false" });
        using var client = factory.CreateClient();
        await AssertProblem(await client.GetAsync(new Uri("/embed", UriKind.Relative)), HttpStatusCode.NotFound, "no endpoint at /embed");
        await AssertProblem(await client.GetAsync(new Uri("/embed-image", UriKind.Relative)), HttpStatusCode.MethodNotAllowed, "GET is not allowed");
    }

    internal static async Task<JsonDocument> AssertProblem(HttpResponseMessage response, HttpStatusCode status, string detailFragment)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal((int)status, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Contains(detailFragment, problem.RootElement.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
        return problem;
    }
}

[Collection(ProcessWideMeasurementGroup.Name)]
public sealed class HeaderRefusalAllocationTests
{
    /// <summary>A 100,000 x 100,000 PNG header (40 GB as RGBA) is refused without decoding or allocating it.</summary>
    [SharedDataFact]
    public async Task A_crafted_huge_png_header_gets_413_without_allocating_the_image()
    {
        await using var factory = new ServiceFactory(ApiTests.ReferenceModel());
        using var client = await factory.StartedClientAsync();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        using var form = ServiceFactory.Form(Fuzz.CraftedImages.PngHeader(100_000, 100_000));
        var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        await ApiTests.AssertProblem(response, HttpStatusCode.RequestEntityTooLarge, "100000x100000");
        Assert.InRange(allocated, 0, 64L << 20);
    }
}

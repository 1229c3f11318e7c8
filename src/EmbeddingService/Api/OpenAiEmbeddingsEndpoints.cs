using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;
using EmbeddingService.Errors;
using EmbeddingService.Inference;
using EmbeddingService.Limits;
using EmbeddingService.Model;
using EmbeddingService.Uploads;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>
/// <c>POST /v1/embeddings</c> in OpenAI's shape, so OpenAI client libraries call the service unchanged. Inputs
/// are texts or images given as data URIs (the service never fetches URLs); errors use OpenAI's error shape.
/// </summary>
public static class OpenAiEmbeddingsEndpoints
{
    public static IEndpointRouteBuilder MapOpenAiEmbeddings(this IEndpointRouteBuilder app)
    {
        var route = app.MapPost("/v1/embeddings", EmbedAsync)
            .WithName("OpenAiEmbeddings")
            .WithSummary("OpenAI-compatible embeddings")
            .WithDescription("{\"model\": \"clip\", \"input\": \"red shoes\" | [\"...\", {\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64,...\"}}], " +
                "\"encoding_format\": \"float\" | \"base64\", \"dimensions\": 1 to the model's dimension (512 for ViT-B/32)} -> {\"object\": \"list\", \"data\": [{\"object\": \"embedding\", \"index\": 0, " +
                "\"embedding\": [...]}], \"model\": ..., \"usage\": {\"prompt_tokens\": n, \"total_tokens\": n}}. prompt_tokens counts text tokens.")
            .Accepts<JsonElement>("application/json")
            .WithRequestExamples("""{"model": "clip", "input": "red leather handbag"}""",
                """{"model": "clip", "input": ["red leather handbag", {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo..."}}], "encoding_format": "float"}""")
            .WithApiErrors()
            .WithTags(ApiDocs.Embeddings)
            .Produces(StatusCodes.Status200OK, contentType: "application/json");
        foreach (var status in new[] { 400, 408, 413, 422, 503 }) route.Produces<OpenAiErrorEnvelope>(status);
        return app;
    }

    private static async Task<IResult> EmbedAsync(OpenAiRequestBody body, TextEmbedder texts, ImageEmbedder images, CancellationToken cancellationToken)
    {
        var request = body.Request!;
        try
        {
            return await EmbedItemsAsync(request, texts, images, cancellationToken);
        }
        catch (BatchRejectedException e)
        {
            throw ApiError.Batch(e.Rejected, request.ImageItems.Count, i => $"input[{request.Items[request.ImageItems[i]].Index}]", "input").Exception(e);
        }
    }

    private static async Task<IResult> EmbedItemsAsync(OpenAiRequest request, TextEmbedder texts, ImageEmbedder images, CancellationToken cancellationToken)
    {
        var textRun = request.TextItems.Count > 0
            ? texts.EmbedAsync([.. request.TextItems.Select(i => request.Items[i].Text!)], cancellationToken)
            : Task.FromResult(new TextEmbeddings([], 0, string.Empty, string.Empty));
        var imageRun = request.ImageItems.Count > 0
            ? images.EmbedManyAsync([.. request.ImageItems.Select(i => request.Items[i].Image!.Memory)], cancellationToken)
            : Task.FromResult<IReadOnlyList<ImageEmbedding>>([]);
        await Task.WhenAll(textRun, imageRun);
        var vectors = new float[request.Items.Count][];
        for (var i = 0; i < request.TextItems.Count; i++) vectors[request.TextItems[i]] = textRun.Result.Vectors[i];
        for (var i = 0; i < request.ImageItems.Count; i++) vectors[request.ImageItems[i]] = imageRun.Result[i].Vector;
        var model = request.TextItems.Count > 0 ? textRun.Result.Model : imageRun.Result[0].Model;
        return TypedResults.Bytes(Write(vectors, request, textRun.Result.Tokens, model), "application/json");
    }

    /// <summary>The response, written directly: the embedding is either an array of floats or base64 of their bytes.</summary>
    private static byte[] Write(float[][] vectors, OpenAiRequest request, int tokens, string model)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            for (var i = 0; i < vectors.Length; i++)
            {
                var vector = vectors[i];
                if (request.Dimensions is { } dimensions && dimensions < vector.Length)
                {
                    // Shortened embeddings as OpenAI defines them: the first n dimensions, L2-normalized again.
                    vector = vector[..dimensions];
                    TensorPrimitives.Divide(vector, TensorPrimitives.Norm(vector), vector);
                }

                json.WriteStartObject();
                json.WriteString("object", "embedding");
                json.WriteNumber("index", i);
                if (request.Base64)
                {
                    json.WriteBase64String("embedding", MemoryMarshal.AsBytes(vector.AsSpan()));
                }
                else
                {
                    json.WriteStartArray("embedding");
                    foreach (var value in vector) json.WriteNumberValue(value);
                    json.WriteEndArray();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("model", model);
            json.WriteStartObject("usage");
            json.WriteNumber("prompt_tokens", tokens);
            json.WriteNumber("total_tokens", tokens);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return stream.ToArray();
    }
}

/// <summary>
/// The intake of <c>/v1/embeddings</c>: refused when the model is not ready (before up to ~180 MB are received for
/// nothing), then the body received and parsed into items; the body's bytes go as soon as the items hold what they need.
/// </summary>
public sealed class OpenAiRequestBody : Intake
{
    internal OpenAiRequest? Request { get; private set; }

    public static ValueTask<OpenAiRequestBody> BindAsync(HttpContext context) => TakeAsync<OpenAiRequestBody>(context, (self, c) =>
    {
        var model = c.RequestServices.GetRequiredService<ModelLifecycle.ModelState>();
        if (model.Serving is not { } serving) throw new ModelNotReadyException(model.Status, model.Error);
        var dimension = serving.Model.Card.Dimension;
        var limits = Limits(c);
        var maxImageBytes = c.RequestServices.GetRequiredService<IOptions<UploadOptions>>().Value.MaxUploadBytes;
        return ReadJsonAsync(c, (limits.MaxBatchUploadBytes * 4 / 3) + limits.MaxTextBodyBytes, root => self.Held = self.Request = OpenAiRequest.Parse(root, limits, maxImageBytes, dimension), maxDepth: 16);
    });
}

/// <summary>A parsed request: its items in order (text, or an image decoded into a buffer), and the options.</summary>
internal sealed class OpenAiRequest : IDisposable
{
    private OpenAiRequest(List<OpenAiItem> items, bool base64, int? dimensions)
    {
        Items = items;
        Base64 = base64;
        Dimensions = dimensions;
        TextItems = [.. Enumerable.Range(0, items.Count).Where(i => items[i].Text is not null)];
        ImageItems = [.. Enumerable.Range(0, items.Count).Where(i => items[i].Image is not null)];
    }

    public List<OpenAiItem> Items { get; }

    public List<int> TextItems { get; }

    public List<int> ImageItems { get; }

    public bool Base64 { get; }

    public int? Dimensions { get; }

    public void Dispose()
    {
        foreach (var item in Items) item.Image?.Dispose();
    }

    /// <param name="modelDimension">The model's embedding dimension: what <c>dimensions</c> may shorten.</param>
    public static OpenAiRequest Parse(JsonElement root, RequestLimits limits, long maxImageBytes, int modelDimension)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("The body must be a JSON object.", null);
        if (root.TryGetProperty("model", out var model)) JsonInput.String(model, "model", "model");
        var base64 = root.TryGetProperty("encoding_format", out var format) && format.ValueKind == JsonValueKind.String && format.ValueEquals("base64");
        if (!base64 && format.ValueKind != JsonValueKind.Undefined && !(format.ValueKind == JsonValueKind.String && format.ValueEquals("float")))
        {
            throw Invalid("'encoding_format' must be \"float\" or \"base64\".", "encoding_format");
        }

        int? dimensions = null;
        if (root.TryGetProperty("dimensions", out var dims) && dims.ValueKind != JsonValueKind.Null)
        {
            dimensions = dims.ValueKind == JsonValueKind.Number && dims.TryGetInt32(out var d) && d >= 1 && d <= modelDimension ? d
                : throw Invalid($"'dimensions' must be an integer from 1 to {modelDimension} (the model's dimension).", "dimensions");
        }

        if (!root.TryGetProperty("input", out var input)) throw Invalid("'input' is required: a string, or an array of strings and image_url objects.", "input");
        var items = new List<OpenAiItem>();
        try
        {
            switch (input.ValueKind)
            {
                case JsonValueKind.String:
                    items.Add(Text(input, 0, limits));
                    break;
                case JsonValueKind.Array:
                    JsonInput.Count(input, "input", limits, "input");
                    foreach (var item in input.EnumerateArray()) items.Add(Item(item, items.Count, limits, maxImageBytes));
                    break;
                default:
                    throw Invalid("'input' must be a string or an array.", "input");
            }

            return new OpenAiRequest(items, base64, dimensions);
        }
        catch
        {
            foreach (var item in items) item.Image?.Dispose();
            throw;
        }
    }

    private static OpenAiItem Item(JsonElement item, int index, RequestLimits limits, long maxImageBytes)
    {
        switch (item.ValueKind)
        {
            case JsonValueKind.String:
                return Text(item, index, limits);
            case JsonValueKind.Object when item.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String:
                if (type.ValueEquals("text") && item.TryGetProperty("text", out var text))
                {
                    return Text(text, index, limits);
                }

                if (type.ValueEquals("image_url") && item.TryGetProperty("image_url", out var image))
                {
                    var url = image.ValueKind == JsonValueKind.Object && image.TryGetProperty("url", out var inner) ? inner : image;
                    return new OpenAiItem(index, null, JsonInput.DataUri(url, $"input[{index}]", "input", maxImageBytes));
                }

                throw Invalid($"input[{index}]: an object must be {{\"type\": \"text\", \"text\": ...}} or {{\"type\": \"image_url\", \"image_url\": {{\"url\": \"data:...\"}}}}.", "input");
            case JsonValueKind.Array or JsonValueKind.Number:
                throw Invalid($"input[{index}]: token arrays are not accepted (CLIP's tokenizer is not OpenAI's); send the text.", "input");
            default:
                throw Invalid($"input[{index}] must be a string or an image_url object.", "input");
        }
    }

    private static OpenAiItem Text(JsonElement element, int index, RequestLimits limits) => new(index, JsonInput.Text(element, $"input[{index}]", limits, "input"), null);

    private static ApiException Invalid(string message, string? param) => ApiError.Invalid(message, param).Exception();
}

/// <summary>One input: a text, or a decoded image.</summary>
internal sealed record OpenAiItem(int Index, string? Text, ByteBuffer? Image);

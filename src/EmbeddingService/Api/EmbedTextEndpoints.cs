using System.Text.Json;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

public static class EmbedTextEndpoints
{
    /// <summary><c>POST /embed-text</c>: <c>{"text": ...}</c> -> one embedding, <c>{"texts": [...]}</c> -> several, in order.</summary>
    public static IEndpointRouteBuilder MapEmbedText(this IEndpointRouteBuilder app)
    {
        app.MapPost("/embed-text", EmbedTextAsync)
            .WithName("EmbedText")
            .WithSummary("Embed text")
            .WithDescription("JSON {\"text\": \"red leather handbag\"} returns {\"embedding\": [512 floats], ...}; " +
                "{\"texts\": [\"...\", ...]} (up to MAX_BATCH_ITEMS) returns {\"embeddings\": [[...], ...], ...} in order. " +
                "Texts are cut to CLIP's 77 tokens.")
            .Accepts<TextRequest>("application/json")
            .Produces<EmbeddingResponse>()
            .Produces<EmbeddingsResponse>()
            .WithTags(ApiDocs.Embeddings)
            .AnswersProblems(400, 408, 413, 422, 503)
            .WithApiErrors();
        return app;
    }

    private static async Task<Results<Ok<EmbeddingResponse>, Ok<EmbeddingsResponse>, ProblemHttpResult>> EmbedTextAsync(
        TextRequestBody body, TextEmbedder embedder, IOptions<RequestLimits> limits, CancellationToken cancellationToken)
    {
        var (texts, single, problem) = Parse(body.Json, limits.Value);
        if (problem is not null)
        {
            return problem;
        }

        var result = await embedder.EmbedAsync(texts!, cancellationToken);
        return single
            ? TypedResults.Ok(new EmbeddingResponse(result.Vectors[0], ClipModel.DisplayName, result.Device))
            : TypedResults.Ok(new EmbeddingsResponse(result.Vectors, ClipModel.DisplayName, result.Device));
    }

    /// <summary>The texts of a request, whether it was the single form, or the problem with it.</summary>
    internal static (List<string>? Texts, bool Single, ProblemHttpResult? Problem) Parse(ReadOnlyMemory<byte> json, RequestLimits limits)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            return (null, false, Problems.Create(StatusCodes.Status400BadRequest, $"The body is not valid JSON: {e.Message}"));
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Invalid("The body must be a JSON object with \"text\" (a string) or \"texts\" (an array of strings).");
            }

            var hasText = root.TryGetProperty("text", out var text);
            var hasTexts = root.TryGetProperty("texts", out var many);
            if (hasText == hasTexts)
            {
                return Invalid(hasText ? "Send either \"text\" or \"texts\", not both." : "The body needs \"text\" (a string) or \"texts\" (an array of strings).");
            }

            if (hasText)
            {
                return One(text, "text", limits) is { } problem ? (null, true, problem) : ([Text(text)], true, null);
            }

            if (many.ValueKind != JsonValueKind.Array)
            {
                return Invalid("\"texts\" must be an array of strings.");
            }

            var count = many.GetArrayLength();
            if (count == 0 || count > limits.MaxBatchItems)
            {
                return Invalid(count == 0 ? "\"texts\" is empty." : $"\"texts\" has {count} items; at most {limits.MaxBatchItems} are accepted (MAX_BATCH_ITEMS).");
            }

            var texts = new List<string>(count);
            foreach (var item in many.EnumerateArray())
            {
                if (One(item, $"texts[{texts.Count}]", limits) is { } problem)
                {
                    return (null, false, problem);
                }

                texts.Add(Text(item));
            }

            return (texts, false, null);
        }

        static (List<string>?, bool, ProblemHttpResult?) Invalid(string detail) => (null, false, Problems.Create(StatusCodes.Status422UnprocessableEntity, detail));
    }

    /// <summary>A string that <see cref="One"/> accepted.</summary>
    internal static string Text(JsonElement element) => element.GetString()!;

    /// <summary>Checks one text: a non-blank string of valid Unicode within MAX_TEXT_CHARS.</summary>
    internal static ProblemHttpResult? One(JsonElement element, string name, RequestLimits limits)
    {
        if (element.ValueKind != JsonValueKind.String)
        {
            return Problems.Create(StatusCodes.Status422UnprocessableEntity, $"\"{name}\" must be a string, not {element.ValueKind.ToString().ToLowerInvariant()}.");
        }

        if (JsonText.TryGet(element) is not { } value)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, JsonText.NotText(name));
        }

        if (string.IsNullOrWhiteSpace(value))
        {
            return Problems.Create(StatusCodes.Status422UnprocessableEntity, $"\"{name}\" is empty.");
        }

        return value.Length > limits.MaxTextChars
            ? Problems.Create(StatusCodes.Status413PayloadTooLarge, $"\"{name}\" has {value.Length:N0} characters; at most {limits.MaxTextChars:N0} are accepted (MAX_TEXT_CHARS).")
            : null;
    }
}

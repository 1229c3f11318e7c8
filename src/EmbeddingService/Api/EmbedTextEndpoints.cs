using EmbeddingService.Inference;
using EmbeddingService.Model;

namespace EmbeddingService.Api;

public static class EmbedTextEndpoints
{
    /// <summary><c>POST /embed-text</c>: <c>{"text": ...}</c> -> one embedding, <c>{"texts": [...]}</c> -> several, in order.</summary>
    public static IEndpointRouteBuilder MapEmbedText(this IEndpointRouteBuilder app)
    {
        app.MapPost("/embed-text", EmbedTextAsync)
            .WithName("EmbedText")
            .WithSummary("Embed text")
            .WithDescription("JSON {\"text\": \"red leather handbag\"} returns {\"embedding\": [512 floats for ViT-B/32], ...}; " +
                "{\"texts\": [\"...\", ...]} (up to MAX_BATCH_ITEMS) returns {\"embeddings\": [[...], ...], ...} in order. " +
                "Texts are cut to CLIP's 77 tokens.")
            .Accepts<TextRequest>("application/json")
            .WithRequestExamples("""{"text": "red leather handbag"}""", """{"texts": ["red leather handbag", "white running shoes"]}""")
            .Produces<EmbeddingResponse>()
            .Produces<EmbeddingsResponse>()
            .WithTags(ApiDocs.Embeddings)
            .AnswersProblems(400, 408, 413, 422, 503)
            .WithApiErrors();
        return app;
    }

    private static async Task<IResult> EmbedTextAsync(TextsBody body, TextEmbedder embedder, CancellationToken cancellationToken)
    {
        var result = await embedder.EmbedAsync(body.Texts, cancellationToken);
        return body.IsSingle
            ? TypedResults.Ok(new EmbeddingResponse(result.Vectors[0], result.Model, result.Device))
            : TypedResults.Ok(new EmbeddingsResponse(result.Vectors, result.Model, result.Device));
    }
}

using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

public static class EmbedImageEndpoints
{
    public const string FileField = "file";

    /// <summary><c>POST /embed-image</c>: multipart field <c>file</c> -> the image's embedding.</summary>
    public static IEndpointRouteBuilder MapEmbedImage(this IEndpointRouteBuilder app)
    {
        app.MapPost("/embed-image", EmbedImageAsync)
            .WithName("EmbedImage")
            .WithSummary("Embed an image")
            .WithDescription("Upload an image as multipart/form-data field 'file'; returns its L2-normalized CLIP embedding (512 numbers for the default ViT-B/32; the model's dimension, GET /).")
            .WithTags(ApiDocs.Embeddings)
            .WithMultipartFiles(FileField, many: false)
            .Produces<EmbeddingResponse>()
            .AnswersProblems(400, 408, 413, 422, 503)
            .WithApiErrors()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<Ok<EmbeddingResponse>> EmbedImageAsync(ImageUpload upload, ImageEmbedder embedder, HttpContext context, CancellationToken cancellationToken)
    {
        var embedding = await embedder.EmbedAsync(upload.Content, cancellationToken);
        context.Response.Headers["Server-Timing"] = ServerTiming(upload.Received, embedding);
        return TypedResults.Ok(new EmbeddingResponse(embedding.Vector, embedding.Model, embedding.Device));
    }

    /// <summary>Where the request's time went, for clients and load tests (W3C Server-Timing).</summary>
    private static string ServerTiming(TimeSpan received, ImageEmbedding embedding) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"receive;dur={received.TotalMilliseconds:F2}, decode;dur={embedding.Decode.TotalMilliseconds:F2}, preprocess;dur={embedding.Preprocess.TotalMilliseconds:F2}, " +
        $"queue;dur={embedding.Batch.Waited.TotalMilliseconds:F2}, inference;dur={embedding.Batch.Run.TotalMilliseconds:F2};desc=\"batch of {embedding.Batch.BatchSize}\"");
}

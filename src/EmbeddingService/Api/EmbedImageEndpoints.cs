using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

public static class EmbedImageEndpoints
{
    public const string FileField = "file";

    private static readonly FormSpec Form = new(FileField, StopAtFirstFile: true);

    /// <summary><c>POST /embed-image</c>: multipart field <c>file</c> -> the image's embedding.</summary>
    public static IEndpointRouteBuilder MapEmbedImage(this IEndpointRouteBuilder app)
    {
        app.MapPost("/embed-image", EmbedImageAsync)
            .WithName("EmbedImage")
            .WithSummary("Embed an image")
            .WithDescription("Upload an image as multipart/form-data field 'file'; returns its L2-normalized 512-d CLIP embedding.")
            .DisableAntiforgery();
        return app;
    }

    private static async Task<Results<Ok<EmbeddingResponse>, ProblemHttpResult>> EmbedImageAsync(
        HttpContext context, ImageEmbedder embedder, UploadReceiver uploads, IOptions<ApiOptions> options, CancellationToken cancellationToken)
    {
        var (received, refused) = await ImageForms.ReceiveAsync(context, embedder, uploads, Form, options.Value, "The multipart form has no field named 'file'.", cancellationToken);
        if (refused is not null)
        {
            return refused;
        }

        using (var form = received!)
        {
            try
            {
                var embedding = await embedder.EmbedAsync(form.Files[0].Content, cancellationToken);
                context.Response.Headers["Server-Timing"] = ServerTiming(embedding);
                return TypedResults.Ok(new EmbeddingResponse(embedding.Vector, ClipModel.DisplayName, embedding.Device));
            }
            catch (Exception e) when (Problems.Embedding(context, e, options.Value) is { } problem)
            {
                return problem;
            }
        }
    }

    /// <summary>Where the request's time went, for clients and load tests (W3C Server-Timing).</summary>
    private static string ServerTiming(ImageEmbedding embedding) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"decode;dur={embedding.Decode.TotalMilliseconds:F2}, queue;dur={embedding.Batch.Waited.TotalMilliseconds:F2}, " +
        $"inference;dur={embedding.Batch.Run.TotalMilliseconds:F2};desc=\"batch of {embedding.Batch.BatchSize}\"");
}

using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

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
            .WithDescription("Upload an image as multipart/form-data field 'file'; returns its L2-normalized 512-d CLIP embedding.")
            .DisableAntiforgery();
        return app;
    }

    private static async Task<Results<Ok<EmbeddingResponse>, ProblemHttpResult>> EmbedImageAsync(
        HttpContext context, ImageEmbedder embedder, IOptions<ApiOptions> options, CancellationToken cancellationToken)
    {
        // The place in the pipeline is taken before the upload is read: refusing costs only the headers.
        ImageEmbedder.Reservation reservation;
        try
        {
            reservation = embedder.Reserve();
        }
        catch (ModelNotReadyException e)
        {
            return Problems.Unavailable(context, options.Value.RetryAfterSeconds, e.Message);
        }
        catch (QueueFullException e)
        {
            return Problems.Unavailable(context, 1, e.Message);
        }

        using (reservation)
        {
            var (file, problem) = await ReadUploadAsync(context.Request, options.Value.MaxUploadBytes, cancellationToken);
            if (problem is not null)
            {
                return problem;
            }

            using (file)
            {
                try
                {
                    var embedding = await reservation.EmbedAsync(file!.Content, cancellationToken);
                    context.Response.Headers["Server-Timing"] = ServerTiming(embedding);
                    return TypedResults.Ok(new EmbeddingResponse(embedding.Vector, ClipModel.DisplayName, embedding.Device));
                }
                catch (ImageRejectedException e)
                {
                    return Problems.Create(e.Reason == RejectionReason.TooManyPixels ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest, e.Message);
                }
            }
        }
    }

    private static async Task<(UploadedFile? File, ProblemHttpResult? Problem)> ReadUploadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        var tooLarge = $"The upload is larger than the limit of {limit:N0} bytes (MAX_UPLOAD_BYTES).";
        try
        {
            var (file, problem) = await MultipartFileReader.ReadAsync(request, FileField, limit, cancellationToken);
            return problem switch
            {
                UploadProblem.NotMultipart => (null, Problems.MissingField(FileField, "Send the image as multipart/form-data with a field named 'file'.")),
                UploadProblem.FieldMissing => (null, Problems.MissingField(FileField, "The multipart form has no field named 'file'.")),
                UploadProblem.TooLarge => (null, Problems.Create(StatusCodes.Status413PayloadTooLarge, tooLarge)),
                _ => (file, null),
            };
        }
        catch (BadHttpRequestException e)
        {
            return (null, Problems.Create(e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? tooLarge : $"The request body could not be read: {e.Message}"));
        }
        catch (InvalidDataException e)
        {
            return (null, Problems.Create(StatusCodes.Status400BadRequest, $"The multipart body is malformed: {e.Message}"));
        }
    }

    /// <summary>Where the request's time went, for clients and load tests (W3C Server-Timing).</summary>
    private static string ServerTiming(ImageEmbedding embedding) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"decode;dur={embedding.Decode.TotalMilliseconds:F2}, queue;dur={embedding.Batch.Waited.TotalMilliseconds:F2}, " +
        $"inference;dur={embedding.Batch.Run.TotalMilliseconds:F2};desc=\"batch of {embedding.Batch.BatchSize}\"");
}

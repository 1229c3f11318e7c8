using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Uploads;

namespace EmbeddingService.Api;

/// <summary>
/// One error vocabulary for every route: what went wrong as a status, a sentence for the client, the refusal it counts
/// (<c>embedding_requests_refused_total{reason}</c>) when the service turned the request away, when to retry, and the
/// parameter at fault. <see cref="From"/> is the only place a fault becomes a status; the route family chooses the shape
/// (<see cref="Problems.Of"/> writes problem+json, <see cref="OpenAiEmbeddingsEndpoints.Error"/> OpenAI's envelope).
/// </summary>
public sealed record ApiError(int Status, string Message, string? Reason = null, int? RetryAfterSeconds = null, string? Parameter = null)
{
    /// <summary>A route's own extra members for problem+json (per-part errors of a batch).</summary>
    public IReadOnlyDictionary<string, object?>? Extensions { get; init; }

    /// <summary>The answer to an exception from embedding, storage or parsing; null for the service's own faults (500).</summary>
    public static ApiError? From(Exception exception, ApiOptions? options) =>
        exception switch
        {
            ImageRejectedException e => Image(e),
            ModelNotReadyException e => new(StatusCodes.Status503ServiceUnavailable, e.Message, "model_not_ready", (options ?? Defaults).RetryAfterSeconds),
            QueueFullException e => new(StatusCodes.Status503ServiceUnavailable, e.Message, "queue_full", 1),
            Model.TowerNotLoadedException e => new(StatusCodes.Status503ServiceUnavailable, e.Message),
            Storage.StorageNotConfiguredException e => new(StatusCodes.Status503ServiceUnavailable, e.Message),
            Storage.StorageUnavailableException e => new(StatusCodes.Status503ServiceUnavailable, e.Message, "database_unavailable", 5),
            OpenAiRequestException e => new(e.Status, e.Message, e.Status == StatusCodes.Status413PayloadTooLarge ? "upload_too_large" : null, Parameter: e.Param),
            _ => null,
        };

    private static readonly ApiOptions Defaults = new();

    /// <summary>An image that cannot be used: too many pixels is "too large" (413, counted), anything else is a bad image (400).</summary>
    public static ApiError Image(ImageRejectedException rejected)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        return rejected.Reason == RejectionReason.TooManyPixels
            ? new(StatusCodes.Status413PayloadTooLarge, rejected.Message, "image_too_large")
            : new(StatusCodes.Status400BadRequest, rejected.Message);
    }

    /// <summary>
    /// A batch with unusable images is refused whole. The first unusable image in part order decides the status (so an
    /// image over MAX_IMAGE_PIXELS is a 413 whether it came alone or in a batch); the message names every one of them.
    /// </summary>
    /// <param name="name">How the route names the part at an index ("part 2 (shoe.jpg)", "input[3]").</param>
    public static ApiError Batch(BatchRejectedException rejected, int parts, Func<int, string> name, string? parameter = null)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        ArgumentNullException.ThrowIfNull(name);
        var ordered = rejected.Rejected.OrderBy(r => r.Index).ToList();
        var first = Image(ordered[0].Reason);
        return first with
        {
            Message = $"{ordered.Count} of {parts} images cannot be used, so none was embedded: " +
                string.Join("; ", ordered.Select(r => $"{name(r.Index)}: {r.Reason.Message}")),
            Parameter = parameter,
        };
    }

    /// <summary>A body that could not be received: a busy service says when to retry; limits count as refusals.</summary>
    public static ApiError Upload(UploadFailure failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        return new(failure.Status, failure.Detail, failure.Kind switch
        {
            UploadFailureKind.Busy => "uploads_busy",
            UploadFailureKind.TooLarge or UploadFailureKind.TooManyFiles => "upload_too_large",
            UploadFailureKind.TimedOut => "upload_too_slow",
            _ => null,
        }, failure.Kind == UploadFailureKind.Busy ? 1 : null);
    }

    /// <summary>Counts the refusal and says when to retry: what every shape of the answer has in common.</summary>
    public void Apply(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Reason is not null) Telemetry.Refusals.Note(context, Reason);
        if (RetryAfterSeconds is { } seconds) context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}

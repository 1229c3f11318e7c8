using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Uploads;
using EmbeddingService.Telemetry;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

/// <summary>RFC 9457 problem responses; every error this API gives carries a human-readable <c>detail</c>.</summary>
internal static class Problems
{
    public static ProblemHttpResult Create(int status, string detail, IDictionary<string, object?>? extensions = null) =>
        TypedResults.Problem(detail: detail, statusCode: status, extensions: extensions);

    /// <summary>A 503 with Retry-After, for "not now" rather than "never".</summary>
    public static ProblemHttpResult Unavailable(HttpContext context, int retryAfterSeconds, string detail, string reason)
    {
        Refusals.Note(context, reason);
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Create(StatusCodes.Status503ServiceUnavailable, detail);
    }

    private static ProblemHttpResult Refused(HttpContext context, int status, string detail, string reason)
    {
        Refusals.Note(context, reason);
        return Create(status, detail);
    }

    /// <summary>FastAPI's answer to a missing form field, as problem JSON with FastAPI's error entry beside it.</summary>
    public static ProblemHttpResult MissingField(string field, string detail) => Create(StatusCodes.Status422UnprocessableEntity, detail,
        new Dictionary<string, object?>
        {
            ["errors"] = new[] { new Dictionary<string, object?> { ["type"] = "missing", ["loc"] = new[] { "body", field }, ["msg"] = "Field required" } },
        });

    /// <summary>Runs a check that refuses from the headers alone (model not ready, pipeline full); null when it passes.</summary>
    public static ProblemHttpResult? Refusal(HttpContext context, Action check, ApiOptions options)
    {
        try
        {
            check();
            return null;
        }
        catch (Exception e) when (Embedding(context, e, options) is { } problem)
        {
            return problem;
        }
    }

    /// <summary>The answer to an exception from embedding: the client's image, or the service being busy; null for real faults.</summary>
    public static ProblemHttpResult? Embedding(HttpContext context, Exception exception, ApiOptions options) => exception switch
    {
        ImageRejectedException { Reason: RejectionReason.TooManyPixels } e => Refused(context, StatusCodes.Status413PayloadTooLarge, e.Message, "image_too_large"),
        ImageRejectedException e => Create(StatusCodes.Status400BadRequest, e.Message),
        ModelNotReadyException e => Unavailable(context, options.RetryAfterSeconds, e.Message, "model_not_ready"),
        QueueFullException e => Unavailable(context, 1, e.Message, "queue_full"),
        Model.TowerNotLoadedException e => Create(StatusCodes.Status503ServiceUnavailable, e.Message),
        _ => null,
    };

    /// <summary>The answer to storage being off or unreachable; null for anything else.</summary>
    public static ProblemHttpResult? Storage(HttpContext context, Exception exception) => exception switch
    {
        Storage.StorageNotConfiguredException e => Create(StatusCodes.Status503ServiceUnavailable, e.Message),
        Storage.StorageUnavailableException e => Unavailable(context, 5, e.Message, "database_unavailable"),
        _ => null,
    };

    /// <summary>The answer to a multipart body that could not be received.</summary>
    public static ProblemHttpResult Upload(HttpContext context, UploadFailure failure, string fileField) => failure.Kind == UploadFailureKind.NotMultipart
        ? MissingField(fileField, $"Send the image as multipart/form-data with a field named '{fileField}'.")
        : Body(context, failure);

    /// <summary>The answer to any body that could not be received: a busy service says when to retry.</summary>
    public static ProblemHttpResult Body(HttpContext context, UploadFailure failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (RefusalReason(failure.Kind) is { } reason)
        {
            Refusals.Note(context, reason);
        }

        if (failure.Kind == UploadFailureKind.Busy)
        {
            context.Response.Headers.RetryAfter = "1";
        }

        return Create(failure.Status, failure.Detail);
    }

    /// <summary>What the refusals metric calls a body the service would not take; null for a malformed one.</summary>
    public static string? RefusalReason(UploadFailureKind kind) => kind switch
    {
        UploadFailureKind.Busy => "uploads_busy",
        UploadFailureKind.TooLarge or UploadFailureKind.TooManyFiles => "upload_too_large",
        UploadFailureKind.TimedOut => "upload_too_slow",
        _ => null,
    };
}

using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

/// <summary>RFC 9457 problem responses; every error this API gives carries a human-readable <c>detail</c>.</summary>
internal static class Problems
{
    public static ProblemHttpResult Create(int status, string detail, IDictionary<string, object?>? extensions = null) =>
        TypedResults.Problem(detail: detail, statusCode: status, extensions: extensions);

    /// <summary>An <see cref="ApiError"/> as problem+json: the refusal counted, Retry-After set, its extensions beside the detail.</summary>
    public static ProblemHttpResult Of(HttpContext context, ApiError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        error.Apply(context);
        return Create(error.Status, error.Message, error.Extensions is null ? null : new Dictionary<string, object?>(error.Extensions));
    }

    /// <summary>The answer to any body that could not be received (<see cref="ApiError.Upload"/>).</summary>
    public static ProblemHttpResult Body(HttpContext context, UploadFailure failure) => Of(context, ApiError.Upload(failure));
}

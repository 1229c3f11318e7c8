using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

/// <summary>RFC 9457 problem responses; every error this API gives carries a human-readable <c>detail</c>.</summary>
internal static class Problems
{
    public static ProblemHttpResult Create(int status, string detail, IDictionary<string, object?>? extensions = null) =>
        TypedResults.Problem(detail: detail, statusCode: status, extensions: extensions);

    /// <summary>A 503 with Retry-After, for "not now" rather than "never".</summary>
    public static ProblemHttpResult Unavailable(HttpContext context, int retryAfterSeconds, string detail)
    {
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Create(StatusCodes.Status503ServiceUnavailable, detail);
    }

    /// <summary>FastAPI's answer to a missing form field, as problem JSON with FastAPI's error entry beside it.</summary>
    public static ProblemHttpResult MissingField(string field, string detail) => Create(StatusCodes.Status422UnprocessableEntity, detail,
        new Dictionary<string, object?>
        {
            ["errors"] = new[] { new Dictionary<string, object?> { ["type"] = "missing", ["loc"] = new[] { "body", field }, ["msg"] = "Field required" } },
        });
}

using EmbeddingService.Imaging;

namespace EmbeddingService.Errors;

/// <summary>What went wrong, in the client's terms; the kind alone decides the status, so one fault has one status on every route.</summary>
public enum ErrorKind
{
    /// <summary>400: the bytes are not what they claim (JSON, multipart, an image, Unicode text).</summary>
    Malformed,

    /// <summary>422: well-formed, but a field is missing, of the wrong type or out of range.</summary>
    Invalid,

    /// <summary>413: over a size limit (body, file, image pixels, text characters, parts).</summary>
    TooLarge,

    /// <summary>408: the body did not arrive in time.</summary>
    TooSlow,

    /// <summary>404: no such item.</summary>
    NotFound,

    /// <summary>503, Retry-After RETRY_AFTER_SECONDS: the model is loading or failed to load.</summary>
    NotReady,

    /// <summary>503, Retry-After 1 s: the pipeline or the upload slots are full.</summary>
    Busy,

    /// <summary>503, Retry-After 5 s: the database cannot be reached.</summary>
    Unavailable,

    /// <summary>503 without Retry-After: this deployment does not offer it (no DATABASE_URL, a tower not loaded).</summary>
    NotConfigured,
}

/// <summary>
/// The one error vocabulary: uploads, parsers, embedders and the store raise it (<see cref="ApiException"/>); one
/// renderer writes it as problem+json, or in OpenAI's envelope on <c>/v1/*</c>, counts <see cref="Reason"/> in
/// <c>embedding_requests_refused_total{reason}</c> and sets Retry-After.
/// </summary>
/// <param name="Kind">What went wrong; it gives the status.</param>
/// <param name="Message">A sentence for the client (the <c>detail</c>).</param>
/// <param name="Reason">The refusal counted, when the service turned the request away for a limit or its state.</param>
/// <param name="Parameter">The request member at fault (OpenAI's <c>param</c>).</param>
public sealed record ApiError(ErrorKind Kind, string Message, string? Reason = null, string? Parameter = null)
{
    public int Status => Kind switch
    {
        ErrorKind.Malformed => StatusCodes.Status400BadRequest,
        ErrorKind.Invalid => StatusCodes.Status422UnprocessableEntity,
        ErrorKind.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorKind.TooSlow => StatusCodes.Status408RequestTimeout,
        ErrorKind.NotFound => StatusCodes.Status404NotFound,
        _ => StatusCodes.Status503ServiceUnavailable,
    };

    /// <summary>Seconds to wait before retrying; <paramref name="notReady"/> is RETRY_AFTER_SECONDS.</summary>
    public int? RetryAfterSeconds(int notReady) => Kind switch
    {
        ErrorKind.NotReady => notReady,
        ErrorKind.Busy => 1,
        ErrorKind.Unavailable => 5,
        _ => null,
    };

    /// <summary>A route's own extra members for problem+json (per-part errors of a batch, FastAPI's missing-field entry).</summary>
    public IReadOnlyDictionary<string, object?>? Extensions { get; init; }

    public ApiException Exception(Exception? inner = null) => new(this, inner);

    public static ApiError Invalid(string message, string? parameter = null) => new(ErrorKind.Invalid, message, Parameter: parameter);

    public static ApiError Malformed(string message, string? parameter = null) => new(ErrorKind.Malformed, message, Parameter: parameter);

    /// <summary>Not JSON: the parser's sentence, cut short (it can quote kilobytes of the client's bytes back).</summary>
    public static ApiError NotJson(System.Text.Json.JsonException e) => Malformed(
        $"The body is not valid JSON: {(e?.Message is { Length: > 300 } long_ ? string.Concat(long_.AsSpan(0, 300), "...") : e?.Message)}");

    /// <summary>FastAPI's answer to a missing form field: 422 with FastAPI's error entry beside the detail.</summary>
    public static ApiError MissingField(string field, string message) => new(ErrorKind.Invalid, message, Parameter: field)
    {
        Extensions = new Dictionary<string, object?>
        {
            ["errors"] = new[] { new Dictionary<string, object?> { ["type"] = "missing", ["loc"] = new[] { "body", field }, ["msg"] = "Field required" } },
        },
    };

    /// <summary>
    /// A batch with unusable images is refused whole. The first unusable image in part order decides the status (so an
    /// image over MAX_IMAGE_PIXELS is a 413 whether it came alone or in a batch); the message names every one of them.
    /// </summary>
    /// <param name="name">How the route names the part at an index ("part 2 (shoe.jpg)", "input[3]").</param>
    public static ApiError Batch(IReadOnlyList<(int Index, ImageRejectedException Reason)> rejected, int parts, Func<int, string> name, string? parameter = null)
    {
        ArgumentNullException.ThrowIfNull(rejected);
        ArgumentNullException.ThrowIfNull(name);
        var ordered = rejected.OrderBy(r => r.Index).ToList();
        return ordered[0].Reason.Error with
        {
            Message = $"{ordered.Count} of {parts} images cannot be used, so none was embedded: " +
                string.Join("; ", ordered.Select(r => $"{name(r.Index)}: {r.Reason.Message}")),
            Parameter = parameter,
        };
    }
}

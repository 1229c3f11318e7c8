namespace EmbeddingService.Errors;

/// <summary>
/// A fault that is the client's or the moment's, not the service's: it carries the <see cref="ApiError"/> the client
/// gets. Embedders, the store, uploads and parsers raise it (or a type derived from it, where a caller tells faults
/// apart); anything else that escapes a route is the service's own fault, a logged 500.
/// </summary>
public class ApiException : Exception
{
    public ApiException()
        : this(new ApiError(ErrorKind.Malformed, "The request could not be handled."))
    {
    }

    public ApiException(string message)
        : this(new ApiError(ErrorKind.Malformed, message))
    {
    }

    public ApiException(string message, Exception innerException)
        : this(new ApiError(ErrorKind.Malformed, message), innerException)
    {
    }

    public ApiException(ApiError error, Exception? innerException = null)
        : base(error?.Message, innerException) => Error = error!;

    public ApiError Error { get; }
}

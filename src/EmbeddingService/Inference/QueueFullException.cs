using EmbeddingService.Errors;

namespace EmbeddingService.Inference;

/// <summary>The pipeline already holds as many requests as it may; the client should retry later.</summary>
public sealed class QueueFullException : ApiException
{
    public QueueFullException()
        : this("The service is at capacity; retry shortly.")
    {
    }

    public QueueFullException(string message)
        : base(new ApiError(ErrorKind.Busy, message, "queue_full"))
    {
    }

    public QueueFullException(string message, Exception innerException)
        : base(new ApiError(ErrorKind.Busy, message, "queue_full"), innerException)
    {
    }
}

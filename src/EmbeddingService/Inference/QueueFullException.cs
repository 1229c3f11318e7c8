namespace EmbeddingService.Inference;

/// <summary>The pipeline already holds as many requests as it may; the client should retry later.</summary>
public sealed class QueueFullException : Exception
{
    public QueueFullException()
        : base("The service is at capacity; retry shortly.")
    {
    }

    public QueueFullException(string message)
        : base(message)
    {
    }

    public QueueFullException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

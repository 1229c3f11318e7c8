namespace EmbeddingService.Download;

/// <summary>The model could not be fetched; the message says why and how to provide one instead.</summary>
public sealed class ModelDownloadException : Exception
{
    public ModelDownloadException()
    {
    }

    public ModelDownloadException(string message)
        : base(message)
    {
    }

    public ModelDownloadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

namespace EmbeddingService.Imaging;

public enum RejectionReason
{
    Empty,
    UnsupportedFormat,
    Corrupt,
    TooManyPixels,
}

/// <summary>An upload that is not an image this service can use; the message is fit for the client.</summary>
public sealed class ImageRejectedException : Exception
{
    public ImageRejectedException()
    {
    }

    public ImageRejectedException(string message)
        : base(message)
    {
    }

    public ImageRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ImageRejectedException(RejectionReason reason, string message)
        : base(message) => Reason = reason;

    public RejectionReason Reason { get; } = RejectionReason.Corrupt;
}

using EmbeddingService.Errors;

namespace EmbeddingService.Imaging;

public enum RejectionReason
{
    Empty,
    UnsupportedFormat,
    Corrupt,
    TooManyPixels,
}

/// <summary>
/// An upload that is not an image this service can use; the message is fit for the client. Too many pixels is
/// "too large" (413, counted as image_too_large), anything else a bad image (400).
/// </summary>
public sealed class ImageRejectedException : ApiException
{
    public ImageRejectedException()
        : this(RejectionReason.Corrupt, "The image could not be decoded.")
    {
    }

    public ImageRejectedException(string message)
        : this(RejectionReason.Corrupt, message)
    {
    }

    public ImageRejectedException(string message, Exception innerException)
        : base(new ApiError(ErrorKind.Malformed, message), innerException)
    {
    }

    public ImageRejectedException(RejectionReason reason, string message)
        : base(reason == RejectionReason.TooManyPixels ? new ApiError(ErrorKind.TooLarge, message, "image_too_large") : new ApiError(ErrorKind.Malformed, message))
        => Reason = reason;

    public RejectionReason Reason { get; } = RejectionReason.Corrupt;
}

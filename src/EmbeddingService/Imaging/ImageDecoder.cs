using SkiaSharp;

namespace EmbeddingService.Imaging;

/// <summary>
/// Decodes an upload to upright 8-bit RGBA. Skia (libjpeg-turbo, libpng, libwebp, Wuffs GIF, BMP) does every
/// format but TIFF, which <see cref="TiffDecoder"/> reads. No colour management is applied, as Pillow applies none.
/// </summary>
public sealed class ImageDecoder(ImagingOptions options)
{
    /// <summary>
    /// Reads only the header: the image's format and size, and the memory its decode will hold at its peak (the
    /// decoded pixels, twice when EXIF orientation needs an upright copy), so the caller can budget it first.
    /// </summary>
    /// <exception cref="ImageRejectedException">Not a supported image, unreadable header, or too many pixels.</exception>
    public unsafe DecodePlan Probe(ReadOnlyMemory<byte> data, int minimumShortSide = 0)
    {
        var format = Sniff(data.Span);
        if (format == ImageFormatSniffer.Tiff)
        {
            var (width, height) = TiffDecoder.ReadSize(data);
            CheckPixelCount(width, height, options.MaxImagePixels);
            return new DecodePlan(format, width, height, TiffDecoder.WorkingBytes(width, height));
        }

        using var pin = data.Pin();
        using var encoded = SKData.Create((IntPtr)pin.Pointer, data.Length, static (_, _) => { });
        using var codec = SKCodec.Create(encoded) ?? throw Unreadable(data.Span);
        CheckPixelCount(codec.Info.Width, codec.Info.Height, options.MaxImagePixels);
        var size = DecodedSize(codec, minimumShortSide);
        var copies = codec.EncodedOrigin == SKEncodedOrigin.TopLeft ? 1 : 2;
        // The preprocessor's resampled rows: at most every row of the image, crop-wide.
        var rows = 4L * Math.Max(minimumShortSide, 1) * Math.Max(size.Width, size.Height);
        return new DecodePlan(format ?? Describe(codec.EncodedFormat), size.Width, size.Height, (copies * 4L * size.Width * size.Height) + rows);
    }

    /// <param name="data">The encoded image; only read while this call runs.</param>
    /// <param name="minimumShortSide">
    /// With fast decoding on, the least short side a JPEG may be decoded to (DCT scaling); 0 for full size.
    /// </param>
    public RgbaImage Decode(ReadOnlyMemory<byte> data, int minimumShortSide = 0) =>
        ExifOrientation.Apply(DecodeStored(data, minimumShortSide, out var orientation), orientation);

    /// <summary>The pixels as the file stores them, and the EXIF orientation (1-8) that would turn them upright.</summary>
    public unsafe RgbaImage DecodeStored(ReadOnlyMemory<byte> data, int minimumShortSide, out int orientation)
    {
        if (Sniff(data.Span) == ImageFormatSniffer.Tiff)
        {
            return TiffDecoder.Decode(data, options.MaxImagePixels, out orientation);
        }

        // Wraps the caller's bytes without a copy; they stay pinned for the whole decode.
        using var pin = data.Pin();
        using var encoded = SKData.Create((IntPtr)pin.Pointer, data.Length, static (_, _) => { });
        using var codec = SKCodec.Create(encoded) ?? throw Unreadable(data.Span);
        orientation = (int)codec.EncodedOrigin;
        return DecodeWith(codec, minimumShortSide);
    }

    private static string? Sniff(ReadOnlySpan<byte> data) => data.IsEmpty
        ? throw new ImageRejectedException(RejectionReason.Empty, "The uploaded file is empty.")
        : ImageFormatSniffer.Name(data);

    private unsafe RgbaImage DecodeWith(SKCodec codec, int minimumShortSide)
    {
        CheckPixelCount(codec.Info.Width, codec.Info.Height, options.MaxImagePixels);

        var size = DecodedSize(codec, minimumShortSide);
        var image = new RgbaImage(size.Width, size.Height);
        try
        {
            var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            // Pillow reads frame 0 of an animation; areas a GIF frame does not paint must not keep a pooled
            // buffer's old bytes.
            if (codec.EncodedFormat == SKEncodedImageFormat.Gif)
            {
                image.Pixels.Clear();
            }

            SKCodecResult result;
            fixed (byte* pixels = image.Pixels)
            {
                result = codec.GetPixels(info, (IntPtr)pixels, image.Stride, new SKCodecOptions(0));
            }

            if (result != SKCodecResult.Success)
            {
                throw new ImageRejectedException(RejectionReason.Corrupt, result == SKCodecResult.IncompleteInput
                    ? $"The {Describe(codec.EncodedFormat)} image is truncated."
                    : $"The {Describe(codec.EncodedFormat)} image could not be decoded ({result}).");
            }

            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    private SKSizeI DecodedSize(SKCodec codec, int minimumShortSide) =>
        options.FastDecodeFactorFor(minimumShortSide) is > 0 and var factor && minimumShortSide > 0 && codec.EncodedFormat == SKEncodedImageFormat.Jpeg
            ? SmallestJpegScale(codec, (int)Math.Ceiling(minimumShortSide * factor))
            : new SKSizeI(codec.Info.Width, codec.Info.Height);

    private static ImageRejectedException Unreadable(ReadOnlySpan<byte> data) => ImageFormatSniffer.Name(data) switch
    {
        null => new(RejectionReason.UnsupportedFormat, "The file is not an image in a supported format (JPEG, PNG, GIF, BMP, WebP, TIFF)."),
        "HEIF/AVIF" => new(RejectionReason.UnsupportedFormat, "HEIF/AVIF images are not supported; send JPEG, PNG, GIF, BMP, WebP or TIFF."),
        var format => new(RejectionReason.Corrupt, $"The {format} image is corrupt or truncated: its header cannot be read."),
    };

    public const int MaxAspectRatio = 10_000;

    internal static void CheckPixelCount(long width, long height, long limit)
    {
        if (width <= 0 || height <= 0)
        {
            throw new ImageRejectedException(RejectionReason.Corrupt, $"The image header gives an impossible size of {width}x{height}.");
        }

        // The short side is resized to 224, so 1:10,000 is already a 2.24-million-pixel long side: no photo is like that,
        // and beyond it the resized size leaves the range of the resampler's integers.
        if (Math.Max(width, height) / Math.Min(width, height) > MaxAspectRatio)
        {
            throw new ImageRejectedException(RejectionReason.Corrupt,
                $"The image is {width}x{height}: an aspect ratio beyond 1:{MaxAspectRatio:N0} cannot be resized and center-cropped.");
        }

        if (width * height > limit)
        {
            throw new ImageRejectedException(RejectionReason.TooManyPixels,
                $"The image is {width}x{height} = {width * height:N0} pixels, more than the limit of {limit:N0} (MAX_IMAGE_PIXELS).");
        }
    }

    /// <summary>libjpeg-turbo scales by n/8 inside the IDCT: take the smallest n that keeps the short side large enough.</summary>
    private static SKSizeI SmallestJpegScale(SKCodec codec, int shortSide)
    {
        for (var eighths = 1; eighths < 8; eighths++)
        {
            var size = codec.GetScaledDimensions(eighths / 8f);
            if (Math.Min(size.Width, size.Height) >= shortSide)
            {
                return size;
            }
        }

        return new SKSizeI(codec.Info.Width, codec.Info.Height);
    }

    private static string Describe(SKEncodedImageFormat format) => format.ToString().ToUpperInvariant();
}

/// <summary>What decoding an image will take: its format, decoded size, and the bytes held at the peak.</summary>
public sealed record DecodePlan(string Format, int Width, int Height, long WorkingBytes);

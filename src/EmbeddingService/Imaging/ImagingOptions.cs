using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Imaging;

public sealed class ImagingOptions
{
    /// <summary>Images with more pixels than this are refused from their header, before any decoding.</summary>
    [ConfigurationKeyName("MAX_IMAGE_PIXELS")]
    [Range(1, 1_000_000_000)]
    public long MaxImagePixels { get; set; } = 50_000_000;

    /// <summary>
    /// JPEGs are decoded at the smallest DCT scale (1/8 steps) whose short side stays at least this many times
    /// the model's input side; 0 decodes every image at full size, exactly as the reference pipeline does. Unset,
    /// <see cref="FastDecodeFactorFor"/> picks the smallest factor that keeps the reference fidelity on a
    /// 12-megapixel photo at the model's input size (docs/decisions.md).
    /// </summary>
    [ConfigurationKeyName("FAST_DECODE_FACTOR")]
    [Range(0.0, 64.0)]
    public double? FastDecodeFactor { get; set; }

    /// <summary>
    /// FAST_DECODE_FACTOR, else 4 for inputs up to 224 px and 6 above: on the 4032x3024 photo, 4 decodes at 3/8 for 224
    /// (max |diff| 0.015) but at 4/8 for 336 (0.029, past the 0.02 bound); 6 decodes at 6/8 for 336 (0.015).
    /// </summary>
    public double FastDecodeFactorFor(int inputSide) => FastDecodeFactor ?? (inputSide > 224 ? 6 : 4);

    /// <summary>
    /// Decoded pixels all requests together may hold (RGBA, counted twice while EXIF orientation makes an upright
    /// copy); a request that does not fit waits. Bounds memory whatever images arrive: a 49-megapixel deflate bomb
    /// decodes to 196 MB.
    /// </summary>
    [ConfigurationKeyName("MAX_DECODE_MEGAPIXELS")]
    [Range(1, 100_000)]
    public int MaxDecodeMegapixels { get; set; } = 64;

    /// <summary>Longest a request waits for <see cref="MaxDecodeMegapixels"/> to have room; then 503 + Retry-After.</summary>
    [ConfigurationKeyName("DECODE_WAIT_TIMEOUT_S")]
    [Range(1, 3600)]
    public int DecodeWaitTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// Whether EXIF orientation turns a photo upright before it is embedded (as CLIP's reference pipeline with
    /// <c>ImageOps.exif_transpose</c>), or its stored pixels are embedded as they are (as a service built on
    /// <c>Image.open(...).convert("RGB")</c> did). Thumbnails are upright either way.
    /// </summary>
    [ConfigurationKeyName("EXIF_ORIENTATION")]
    public ExifOrientationMode ExifOrientation { get; set; } = ExifOrientationMode.Apply;

    public long MaxDecodeBytes => MaxDecodeMegapixels * 4_000_000L;
}

public enum ExifOrientationMode
{
    Apply,
    Ignore,
}

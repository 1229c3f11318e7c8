using SkiaSharp;

namespace EmbeddingService.Imaging;

/// <summary>Small JPEG previews of decoded images, for search results: longest side 256, on white where transparent.</summary>
public static class ThumbnailMaker
{
    public const int LongestSide = 256;
    public const string ContentType = "image/jpeg";

    public static unsafe byte[] Make(RgbaImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var scale = Math.Min(1.0, (double)LongestSide / Math.Max(image.Width, image.Height));
        var width = Math.Max(1, (int)Math.Round(image.Width * scale));
        var height = Math.Max(1, (int)Math.Round(image.Height * scale));
        fixed (byte* pixels = image.Pixels)
        {
            using var source = new SKBitmap();
            source.InstallPixels(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul), (IntPtr)pixels, image.Stride);
            using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            surface.Canvas.Clear(SKColors.White);
            using var sourceImage = SKImage.FromBitmap(source);
            surface.Canvas.DrawImage(sourceImage, new SKRect(0, 0, width, height), new SKSamplingOptions(SKCubicResampler.Mitchell));
            using var snapshot = surface.Snapshot();
            using var encoded = snapshot.Encode(SKEncodedImageFormat.Jpeg, 82);
            return encoded.ToArray();
        }
    }
}

namespace EmbeddingService.Imaging;

/// <summary>Names a format from its signature, so a broken file of a known kind is called corrupt, not unsupported.</summary>
internal static class ImageFormatSniffer
{
    public const string Tiff = "TIFF";

    public static string? Name(ReadOnlySpan<byte> data) => data switch
    {
        [0xFF, 0xD8, 0xFF, ..] => "JPEG",
        [0x89, (byte)'P', (byte)'N', (byte)'G', ..] => "PNG",
        [(byte)'G', (byte)'I', (byte)'F', (byte)'8', ..] => "GIF",
        [(byte)'B', (byte)'M', ..] => "BMP",
        [(byte)'R', (byte)'I', (byte)'F', (byte)'F', _, _, _, _, (byte)'W', (byte)'E', (byte)'B', (byte)'P', ..] => "WebP",
        [(byte)'I', (byte)'I', 42, 0, ..] or [(byte)'M', (byte)'M', 0, 42, ..] => Tiff,
        [_, _, _, _, (byte)'f', (byte)'t', (byte)'y', (byte)'p', ..] => "HEIF/AVIF",
        _ => null,
    };
}

using EmbeddingService.Limits;

namespace EmbeddingService.Imaging;

/// <summary>
/// Decoded pixels, 4 bytes per pixel (R, G, B, then alpha or padding, never premultiplied). Four bytes keep
/// each pixel one aligned 32-bit load. Small images reuse pooled arrays; large ones live in native memory that
/// is freed on dispose, so a burst of huge images leaves nothing behind.
/// </summary>
public sealed class RgbaImage : IDisposable
{
    private readonly ByteBuffer _buffer;

    public RgbaImage(int width, int height)
    {
        Width = width;
        Height = height;
        _buffer = BoundedBufferPool.Images.Rent(checked(width * height * 4));
    }

    public int Width { get; }

    public int Height { get; }

    public int Stride => Width * 4;

    public Span<byte> Pixels => _buffer.Span;

    public void Dispose() => _buffer.Dispose();
}

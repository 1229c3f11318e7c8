using EmbeddingService.Limits;

namespace EmbeddingService.Imaging;

/// <summary>
/// Decoded pixels, 4 bytes per pixel (R, G, B, then alpha or padding, never premultiplied). Four bytes keep
/// each pixel one aligned 32-bit load. Small images reuse pooled buffers; large ones are plain arrays the
/// garbage collector takes back, so a burst of huge images leaves no memory behind.
/// </summary>
public sealed class RgbaImage : IDisposable
{
    private byte[]? _buffer;

    public RgbaImage(int width, int height)
    {
        Width = width;
        Height = height;
        _buffer = BoundedBufferPool.Images.Rent(checked(width * height * 4));
    }

    public int Width { get; }

    public int Height { get; }

    public int Stride => Width * 4;

    public Span<byte> Pixels => Buffer.AsSpan(0, Width * Height * 4);

    public byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(RgbaImage));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            BoundedBufferPool.Images.Return(buffer);
        }
    }
}

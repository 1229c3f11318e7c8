using System.Buffers;

namespace EmbeddingService.Imaging;

/// <summary>
/// Decoded pixels, 4 bytes per pixel (R, G, B, then alpha or padding, never premultiplied), in a pooled
/// buffer that goes back to the pool on dispose. Four bytes keep each pixel one aligned 32-bit load.
/// </summary>
public sealed class RgbaImage : IDisposable
{
    /// <summary>Decoded images reach hundreds of megabytes: a pool of their own keeps them off the shared one.</summary>
    private static readonly ArrayPool<byte> Pool = ArrayPool<byte>.Create(maxArrayLength: 1 << 30, maxArraysPerBucket: 4);

    private byte[]? _buffer;

    public RgbaImage(int width, int height)
    {
        Width = width;
        Height = height;
        _buffer = Pool.Rent(checked(width * height * 4));
    }

    public int Width { get; }

    public int Height { get; }

    public int Stride => Width * 4;

    public Span<byte> Pixels => _buffer.AsSpan(0, Width * Height * 4);

    public byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(RgbaImage));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            Pool.Return(buffer);
        }
    }
}

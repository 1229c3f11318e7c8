using System.Buffers;

namespace EmbeddingService.Limits;

/// <summary>
/// Pools only arrays up to a small size and allocates larger ones plainly, so that the garbage collector can
/// give them back: a shared <see cref="ArrayPool{T}"/> keeps every size it ever handed out, per core, for the
/// life of the process (a 49-megapixel decode is 196 MB).
/// </summary>
public sealed class BoundedBufferPool(int largestPooledLength, int arraysPerSize)
{
    private readonly ArrayPool<byte> _pool = ArrayPool<byte>.Create(largestPooledLength, arraysPerSize);

    /// <summary>Uploads: most product photos are under 1 MiB.</summary>
    public static BoundedBufferPool Small { get; } = new(1 << 20, 16);

    /// <summary>Decoded images up to 2 megapixels (8 MiB of RGBA).</summary>
    public static BoundedBufferPool Images { get; } = new(8 << 20, 4);

    public int LargestPooledLength { get; } = largestPooledLength;

    public byte[] Rent(int minimumLength) => minimumLength <= LargestPooledLength
        ? _pool.Rent(minimumLength)
        : GC.AllocateUninitializedArray<byte>(minimumLength);

    public void Return(byte[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length <= LargestPooledLength)
        {
            _pool.Return(array);
        }
    }
}

using System.Runtime.InteropServices;
using BitMiracle.LibTiff.Classic;

namespace EmbeddingService.Imaging;

/// <summary>TIFF through LibTiff.NET's RGBA interface (first page; 16-bit samples keep their high byte, as Pillow).</summary>
internal static class TiffDecoder
{
    static TiffDecoder() => Tiff.SetErrorHandler(new SilentErrors());

    /// <summary>
    /// Bytes a decode holds at its peak: libtiff's raster, the image it is copied into, and a decompressed strip
    /// (at most the whole image at 8 samples of 8 bits, or 4 of 16, per pixel).
    /// </summary>
    public static long WorkingBytes(int width, int height) => 16L * width * height;

    public static (int Width, int Height) ReadSize(ReadOnlyMemory<byte> data) => Guard(data, tiff => Size(tiff));

    /// <summary>A TIFF operation that allocated more than this is followed by a collection (see <see cref="Guard"/>).</summary>
    private const long CollectAfterBytes = 16 << 20;

    /// <param name="orientation">Always 1: libtiff's RGBA interface reads the raster the way its orientation tag says.</param>
    public static RgbaImage Decode(ReadOnlyMemory<byte> data, long maxPixels, out int orientation)
    {
        orientation = 1;
        return Decode(data, maxPixels);
    }

    private static RgbaImage Decode(ReadOnlyMemory<byte> data, long maxPixels) => Guard(data, tiff =>
    {
        var (width, height) = Size(tiff);
        ImageDecoder.CheckPixelCount(width, height, maxPixels);
        // LibTiff.NET's RGBA interface needs a managed int[].
        var raster = GC.AllocateUninitializedArray<int>(width * height);
        if (!tiff.ReadRGBAImageOriented(width, height, raster, Orientation.TOPLEFT, stopOnError: true))
        {
            throw new ImageRejectedException(RejectionReason.Corrupt, "The TIFF image could not be decoded.");
        }

        // libtiff packs each pixel as A<<24 | B<<16 | G<<8 | R: in little-endian memory that is R, G, B, A.
        var image = new RgbaImage(width, height);
        MemoryMarshal.AsBytes(raster.AsSpan()).CopyTo(image.Pixels);
        return image;
    });

    private static (int Width, int Height) Size(Tiff tiff) =>
        (tiff.GetField(TiffTag.IMAGEWIDTH)?[0].ToInt() ?? 0, tiff.GetField(TiffTag.IMAGELENGTH)?[0].ToInt() ?? 0);

    /// <summary>
    /// LibTiff.NET is managed code reading untrusted offsets and counts: on a crafted file it throws what any
    /// such code throws. Those are the file's fault, so they become a 400 naming the format.
    /// </summary>
    /// <remarks>
    /// LibTiff.NET allocates managed arrays sized from the file itself (the raster, strips sized by the directory's
    /// byte counts: a crafted file asks for 2 GB before its read fails), and the garbage collector lets many large
    /// dead arrays pile up before it collects: the fuzz suite saw 4 GB of them. An operation that allocated more
    /// than 16 MiB is therefore followed by a collection. Decoding runs on one thread, so the thread's allocation
    /// count measures exactly this call.
    /// </remarks>
    private static T Guard<T>(ReadOnlyMemory<byte> data, Func<Tiff, T> read)
    {
        TiffDirectoryCheck.Validate(data.Span);
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var stream = MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);
        try
        {
            using var tiff = Tiff.ClientOpen("upload.tiff", "r", stream, new TiffStream())
                ?? throw new ImageRejectedException(RejectionReason.Corrupt, "The TIFF header is not readable.");
            return read(tiff);
        }
        // Found by the fuzz suite: FormatException from a tag of the wrong type, IndexOutOfRange and IOException from
        // offsets past the end. OutOfMemoryException: an array sized from a count in the file, refused by the runtime.
        // The library's messages can quote the file's bytes, so only the exception's kind is passed on.
        catch (Exception e) when (e is IOException or ArgumentException or IndexOutOfRangeException or InvalidOperationException
            or NullReferenceException or ArithmeticException or InvalidCastException or FormatException or NotSupportedException
            or KeyNotFoundException or OutOfMemoryException)
        {
            throw new ImageRejectedException(RejectionReason.Corrupt, $"The TIFF image is corrupt: its structure cannot be read ({e.GetType().Name}).");
        }
        finally
        {
            stream.Dispose();
            if (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore > CollectAfterBytes)
            {
                GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            }
        }
    }

    private sealed class SilentErrors : TiffErrorHandler
    {
        public override void ErrorHandler(Tiff tif, string method, string format, params object[] args)
        {
        }

        public override void ErrorHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args)
        {
        }

        public override void WarningHandler(Tiff tif, string method, string format, params object[] args)
        {
        }

        public override void WarningHandlerExt(Tiff tif, object clientData, string method, string format, params object[] args)
        {
        }
    }
}

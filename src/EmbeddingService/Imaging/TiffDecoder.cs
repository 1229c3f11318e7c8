using System.Buffers;
using BitMiracle.LibTiff.Classic;

namespace EmbeddingService.Imaging;

/// <summary>TIFF through LibTiff.NET's RGBA interface (first page; 16-bit samples keep their high byte, as Pillow).</summary>
internal static class TiffDecoder
{
    static TiffDecoder() => Tiff.SetErrorHandler(new SilentErrors());

    public static RgbaImage Decode(ReadOnlySpan<byte> data, long maxPixels)
    {
        using var stream = new MemoryStream(data.ToArray(), writable: false);
        using var tiff = Tiff.ClientOpen("upload.tiff", "r", stream, new TiffStream())
            ?? throw new ImageRejectedException(RejectionReason.Corrupt, "The TIFF header is not readable.");
        var width = tiff.GetField(TiffTag.IMAGEWIDTH)?[0].ToInt() ?? 0;
        var height = tiff.GetField(TiffTag.IMAGELENGTH)?[0].ToInt() ?? 0;
        ImageDecoder.CheckPixelCount(width, height, maxPixels);

        var raster = ArrayPool<int>.Shared.Rent(width * height);
        try
        {
            if (!tiff.ReadRGBAImageOriented(width, height, raster, Orientation.TOPLEFT, stopOnError: true))
            {
                throw new ImageRejectedException(RejectionReason.Corrupt, "The TIFF image could not be decoded.");
            }

            // libtiff packs each pixel as A<<24 | B<<16 | G<<8 | R: in little-endian memory that is R, G, B, A.
            var image = new RgbaImage(width, height);
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(raster.AsSpan(0, width * height)).CopyTo(image.Pixels);
            return image;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(raster);
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

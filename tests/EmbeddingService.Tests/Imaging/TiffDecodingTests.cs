using BitMiracle.LibTiff.Classic;
using EmbeddingService.Imaging;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Imaging;

/// <summary>No reference TIFF is shared, so the PNG's own pixels are written as TIFF and must come back the same.</summary>
public sealed class TiffDecodingTests
{
    [SharedDataTheory]
    [InlineData(Compression.NONE)]
    [InlineData(Compression.LZW)]
    [InlineData(Compression.DEFLATE)]
    public void A_tiff_of_a_png_gives_the_pngs_preprocessed_pixels(Compression compression)
    {
        var decoder = new ImageDecoder(new ImagingOptions());
        using var png = decoder.Decode(File.ReadAllBytes(SharedData.Image("chelsea.png")));
        var tiff = WriteRgbTiff(png, compression);

        using var decoded = decoder.Decode(tiff);
        Assert.Equal((png.Width, png.Height), (decoded.Width, decoded.Height));
        for (var i = 0; i < png.Width * png.Height; i++)
        {
            Assert.Equal(png.Pixels.Slice(i * 4, 3).ToArray(), decoded.Pixels.Slice(i * 4, 3).ToArray());
        }
    }

    [Fact]
    public void A_tiff_over_the_pixel_limit_is_refused_from_its_header()
    {
        using var image = new RgbaImage(40, 30);
        var tiff = WriteRgbTiff(image, Compression.NONE);
        var error = Assert.Throws<ImageRejectedException>(() => new ImageDecoder(new ImagingOptions { MaxImagePixels = 1000 }).Decode(tiff));
        Assert.Equal(RejectionReason.TooManyPixels, error.Reason);
    }

    [Fact]
    public void A_truncated_tiff_is_refused_as_corrupt()
    {
        using var image = new RgbaImage(64, 64);
        var tiff = WriteRgbTiff(image, Compression.NONE);
        var error = Assert.Throws<ImageRejectedException>(() => new ImageDecoder(new ImagingOptions()).Decode(tiff.AsMemory(0, tiff.Length / 3)));
        Assert.Equal(RejectionReason.Corrupt, error.Reason);
    }

    private static byte[] WriteRgbTiff(RgbaImage image, Compression compression)
    {
        using var stream = new MemoryStream();
        using (var tiff = Tiff.ClientOpen("test.tiff", "w", stream, new TiffStream()))
        {
            tiff.SetField(TiffTag.IMAGEWIDTH, image.Width);
            tiff.SetField(TiffTag.IMAGELENGTH, image.Height);
            tiff.SetField(TiffTag.SAMPLESPERPIXEL, 3);
            tiff.SetField(TiffTag.BITSPERSAMPLE, 8);
            tiff.SetField(TiffTag.PHOTOMETRIC, Photometric.RGB);
            tiff.SetField(TiffTag.PLANARCONFIG, PlanarConfig.CONTIG);
            tiff.SetField(TiffTag.COMPRESSION, compression);
            tiff.SetField(TiffTag.ROWSPERSTRIP, 16);
            var row = new byte[image.Width * 3];
            for (var y = 0; y < image.Height; y++)
            {
                for (var x = 0; x < image.Width; x++)
                {
                    image.Pixels.Slice(((y * image.Width) + x) * 4, 3).CopyTo(row.AsSpan(x * 3, 3));
                }

                tiff.WriteScanline(row, y);
            }

            tiff.WriteDirectory();
            tiff.Flush();
            return stream.ToArray();
        }
    }
}

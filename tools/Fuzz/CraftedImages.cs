using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Fuzz;

/// <summary>
/// Images built to attack decoders: absurd or zero sizes in every format's header, decompression bombs,
/// thousands of frames or chunks, TIFF directories pointing anywhere, EXIF with impossible counts.
/// </summary>
public static class CraftedImages
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly Lazy<byte[]> DeflateBomb = new(() => GrayPng(7000, 7000));

    /// <summary>Every crafted image, by name; <paramref name="jpeg"/> and <paramref name="png"/> are real images to graft onto.</summary>
    public static IEnumerable<(string Name, Func<byte[]> Make)> All(byte[] jpeg, byte[] png) =>
    [
        ("png-huge-dimensions", () => PngHeader(100_000, 100_000)),
        ("png-zero-dimensions", () => PngHeader(0, 0)),
        ("png-max-dimensions", () => PngHeader(int.MaxValue, 1)),
        ("png-deflate-bomb-7000x7000", () => DeflateBomb.Value),
        ("png-20000-chunks", () => PngWithChunks(png, 20_000)),
        ("gif-20000-frames", () => GifWithFrames(20_000)),
        ("gif-huge-screen", () => GifHeader(65_535, 65_535)),
        ("jpeg-huge-dimensions", () => JpegWithSize(jpeg, 65_535, 65_535)),
        ("jpeg-zero-dimensions", () => JpegWithSize(jpeg, 0, 0)),
        ("jpeg-exif-huge-counts", () => JpegWithExif(jpeg, entryCount: 0xFFFF, valueCount: 0x7FFF_FFFF)),
        ("jpeg-exif-offset-outside", () => JpegWithExif(jpeg, entryCount: 1, valueCount: 4, valueOffset: 0x7FFF_0000)),
        ("jpeg-exif-orientation-99", () => JpegWithExif(jpeg, entryCount: 1, valueCount: 1, orientation: 99)),
        ("bmp-huge-dimensions", () => Bmp(100_000, 100_000)),
        ("bmp-negative-dimensions", () => Bmp(-5, int.MinValue)),
        ("webp-max-dimensions", () => WebpLossless(16_384, 16_384)),
        ("tiff-huge-dimensions", () => Tiff(100_000, 100_000, stripOffset: 8)),
        ("tiff-zero-dimensions", () => Tiff(0, 0, stripOffset: 8)),
        ("tiff-strip-offset-outside", () => Tiff(64, 64, stripOffset: 0x7FFF_FFF0)),
        ("tiff-strip-count-huge", () => Tiff(64, 64, stripOffset: 8, stripBytes: 0x7FFF_FFFF)),
        ("tiff-ifd-offset-outside", () => TiffHeader(ifdOffset: 0x7FFF_FFF0)),
        ("tiff-ifd-entry-count-huge", () => TiffIfdCount(0xFFFF)),
        ("tiff-ifd-loop", () => Tiff(64, 64, stripOffset: 8, nextIfd: 8)),
        ("tiff-bits-per-sample-99", () => Tiff(16, 16, stripOffset: 8, bitsPerSample: 99)),
    ];

    /// <summary>A valid PNG signature and IHDR (8-bit RGB) of the given size, followed by a token IDAT and IEND.</summary>
    public static byte[] PngHeader(int width, int height)
    {
        using var stream = new MemoryStream();
        stream.Write(PngSignature);
        WriteChunk(stream, "IHDR", Ihdr(width, height, colorType: 2));
        WriteChunk(stream, "IDAT", ZlibCompress(new byte[64]));
        WriteChunk(stream, "IEND", []);
        return stream.ToArray();
    }

    /// <summary>A valid 8-bit grayscale PNG of zeros: ~50 KB that inflates to width x height bytes.</summary>
    public static byte[] GrayPng(int width, int height)
    {
        using var stream = new MemoryStream();
        stream.Write(PngSignature);
        WriteChunk(stream, "IHDR", Ihdr(width, height, colorType: 0));
        using (var idat = new MemoryStream())
        {
            using (var zlib = new ZLibStream(idat, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                var row = new byte[width + 1];
                for (var y = 0; y < height; y++) zlib.Write(row);
            }

            WriteChunk(stream, "IDAT", idat.ToArray());
        }

        WriteChunk(stream, "IEND", []);
        return stream.ToArray();
    }

    private static byte[] PngWithChunks(byte[] png, int chunks)
    {
        using var stream = new MemoryStream();
        stream.Write(png.AsSpan(0, 33)); // signature + IHDR
        var text = Encoding.ASCII.GetBytes("Comment\0x");
        for (var i = 0; i < chunks; i++) WriteChunk(stream, "tEXt", text);
        stream.Write(png.AsSpan(33));
        return stream.ToArray();
    }

    private static byte[] Ihdr(int width, int height, byte colorType)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = colorType;
        return ihdr;
    }

    private static void WriteChunk(Stream stream, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        stream.Write(length);
        var typeAndData = new byte[4 + data.Length];
        Encoding.ASCII.GetBytes(type, typeAndData);
        data.CopyTo(typeAndData, 4);
        stream.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(length, Crc32(typeAndData));
        stream.Write(length);
    }

    private static byte[] ZlibCompress(byte[] data)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Fastest, leaveOpen: true)) zlib.Write(data);
        return output.ToArray();
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFF_FFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB8_8320u ^ (crc >> 1) : crc >> 1;
        }

        return ~crc;
    }

    private static byte[] GifHeader(int width, int height)
    {
        var header = new byte[] { (byte)'G', (byte)'I', (byte)'F', (byte)'8', (byte)'9', (byte)'a', 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF };
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), (ushort)width);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)height);
        return [.. header, 0x3B];
    }

    /// <summary>A 1x1 GIF with many 1x1 frames (each: image descriptor and a 3-byte LZW stream of one pixel).</summary>
    private static byte[] GifWithFrames(int frames)
    {
        using var stream = new MemoryStream();
        var header = GifHeader(1, 1);
        stream.Write(header.AsSpan(0, header.Length - 1));
        byte[] frame = [0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00];
        for (var i = 0; i < frames; i++) stream.Write(frame);
        stream.WriteByte(0x3B);
        return stream.ToArray();
    }

    private static byte[] JpegWithSize(byte[] jpeg, int width, int height)
    {
        var copy = (byte[])jpeg.Clone();
        for (var i = 2; i + 9 < copy.Length; i++)
        {
            // SOF0..SOF2: FF C0-C2, length(2), precision(1), height(2), width(2)
            if (copy[i] == 0xFF && copy[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(i + 5), (ushort)height);
                BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(i + 7), (ushort)width);
                break;
            }
        }

        return copy;
    }

    private static byte[] JpegWithExif(byte[] jpeg, int entryCount, int valueCount, int valueOffset = 8, int orientation = 6)
    {
        // APP1 "Exif\0\0" + little-endian TIFF header + IFD0 whose first entry is Orientation (0x0112, SHORT).
        using var tiff = new MemoryStream();
        var writer = new BinaryWriter(tiff);
        writer.Write("II"u8);
        writer.Write((ushort)42);
        writer.Write(8u);
        writer.Write((ushort)entryCount);
        writer.Write((ushort)0x0112);
        writer.Write((ushort)3);
        writer.Write(valueCount);
        writer.Write(valueCount == 1 ? (uint)orientation : (uint)valueOffset);
        writer.Write(0u);
        writer.Flush();
        var payload = (byte[])[.. "Exif\0\0"u8, .. tiff.ToArray()];
        var segment = new byte[4 + payload.Length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(payload.Length + 2));
        payload.CopyTo(segment, 4);
        return [.. jpeg.AsSpan(0, 2), .. segment, .. jpeg.AsSpan(2)];
    }

    private static byte[] Bmp(int width, int height)
    {
        var bmp = new byte[54 + 64];
        bmp[0] = (byte)'B';
        bmp[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), bmp.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(28), 24);
        return bmp;
    }

    private static byte[] WebpLossless(int width, int height)
    {
        var bits = (uint)(width - 1) | ((uint)(height - 1) << 14);
        var body = new byte[] { (byte)'V', (byte)'P', (byte)'8', (byte)'L', 16, 0, 0, 0, 0x2F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(9), bits);
        var riff = new byte[12];
        "RIFF"u8.CopyTo(riff);
        BinaryPrimitives.WriteInt32LittleEndian(riff.AsSpan(4), 4 + body.Length);
        "WEBP"u8.CopyTo(riff.AsSpan(8));
        return [.. riff, .. body];
    }

    private static byte[] TiffHeader(uint ifdOffset)
    {
        var header = new byte[16];
        "II"u8.CopyTo(header);
        header[2] = 42;
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), ifdOffset);
        return header;
    }

    private static byte[] TiffIfdCount(ushort count) => [.. TiffHeader(8).AsSpan(0, 8), (byte)count, (byte)(count >> 8), 0x00, 0x01, 0x04, 0, 1, 0, 0, 0, 64, 0, 0, 0];

    /// <summary>A valid, uncompressed 16x16 RGB TIFF: a seed for mutations, as the shared images have no TIFF.</summary>
    public static byte[] ValidTiff()
    {
        const int Side = 16;
        var pixels = new byte[Side * Side * 3];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 7);
        return [.. Tiff(Side, Side, stripOffset: 8 + 2 + (9 * 12) + 4, trailing: pixels)];
    }

    /// <summary>A little-endian baseline RGB TIFF directory with the given size, strip and next-directory offsets.</summary>
    private static byte[] Tiff(int width, int height, uint stripOffset, uint stripBytes = 0, uint nextIfd = 0, ushort bitsPerSample = 8, byte[]? trailing = null)
    {
        (ushort Tag, ushort Type, uint Value)[] entries =
        [
            (256, 4, (uint)width), (257, 4, (uint)height), (258, 3, bitsPerSample), (259, 3, 1), (262, 3, 2),
            (273, 4, stripOffset), (277, 3, 3), (278, 4, (uint)Math.Max(1, height)), (279, 4, stripBytes == 0 ? (uint)(width * height * 3) : stripBytes),
        ];
        using var stream = new MemoryStream();
        var writer = new BinaryWriter(stream);
        writer.Write(TiffHeader(8).AsSpan(0, 8));
        writer.Write((ushort)entries.Length);
        foreach (var (tag, type, value) in entries)
        {
            writer.Write(tag);
            writer.Write(type);
            writer.Write(1u);
            writer.Write(value);
        }

        writer.Write(nextIfd);
        writer.Write(trailing ?? new byte[256]);
        writer.Flush();
        return stream.ToArray();
    }
}

using System.Buffers.Binary;

namespace EmbeddingService.Imaging;

/// <summary>
/// Checks the first TIFF directory against the file's length before LibTiff.NET reads it. The library trusts
/// counts and offsets: a crafted 300-byte file whose strip byte count says 2 GB makes it allocate and clear 2 GB
/// (RSS reached 4 GB in the fuzz benchmark). Every entry's data and every strip or tile must lie inside the file,
/// and samples are bounded, because the decompressed strip buffer is sized by width x rows x samples x bits: a
/// directory claiming 65,535 samples per pixel made it allocate gigabytes.
/// </summary>
internal static class TiffDirectoryCheck
{
    private const ushort BitsPerSample = 258;
    private const ushort SamplesPerPixel = 277;
    private const ushort StripOffsets = 273;
    private const ushort StripByteCounts = 279;
    private const ushort TileOffsets = 324;
    private const ushort TileByteCounts = 325;

    public static void Validate(ReadOnlySpan<byte> data)
    {
        if (data.Length < 8)
        {
            throw Corrupt("its header is cut short");
        }

        var little = data[0] == (byte)'I';
        var ifd = U32(data, 4, little);
        if (ifd > (uint)data.Length - 2)
        {
            throw Corrupt("its first directory lies past the end of the file");
        }

        var entries = U16(data, (int)ifd, little);
        if (ifd + 2 + (12L * entries) > data.Length)
        {
            throw Corrupt($"its directory of {entries} entries runs past the end of the file");
        }

        for (var i = 0; i < entries; i++)
        {
            var entry = (int)ifd + 2 + (12 * i);
            var tag = U16(data, entry, little);
            var type = U16(data, entry + 2, little);
            var count = U32(data, entry + 4, little);
            var size = (long)count * TypeSize(type);
            if (size > data.Length)
            {
                throw Corrupt($"tag {tag} claims {size:N0} bytes in a file of {data.Length:N0}");
            }

            var values = size <= 4 ? (uint)(entry + 8) : U32(data, entry + 8, little);
            if (size > 4 && values + size > data.Length)
            {
                throw Corrupt($"tag {tag} points past the end of the file");
            }

            if (tag == SamplesPerPixel && type is 3 or 4 && (type == 3 ? U16(data, (int)values, little) : U32(data, (int)values, little)) > 8)
            {
                throw Corrupt("it claims more than 8 samples per pixel");
            }

            if (tag is StripOffsets or StripByteCounts or TileOffsets or TileByteCounts or BitsPerSample && type is 3 or 4)
            {
                for (var v = 0L; v < count; v++)
                {
                    var at = (int)(values + (v * TypeSize(type)));
                    var value = type == 3 ? (uint)U16(data, at, little) : U32(data, at, little);
                    if (tag == BitsPerSample)
                    {
                        if (value > 16)
                        {
                            throw Corrupt($"{value} bits per sample are not supported (1 to 16)");
                        }
                    }
                    else if (value > data.Length)
                    {
                        throw Corrupt($"a strip or tile (tag {tag}) of {value:N0} lies outside a file of {data.Length:N0} bytes");
                    }
                }
            }
        }
    }

    private static int TypeSize(ushort type) => type switch
    {
        3 or 8 => 2,
        4 or 9 or 11 or 13 => 4,
        5 or 10 or 12 or 16 or 17 or 18 => 8,
        _ => 1,
    };

    private static ushort U16(ReadOnlySpan<byte> data, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt16BigEndian(data[at..]);

    private static uint U32(ReadOnlySpan<byte> data, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt32BigEndian(data[at..]);

    private static ImageRejectedException Corrupt(string what) => new(RejectionReason.Corrupt, $"The TIFF image is corrupt: {what}.");
}

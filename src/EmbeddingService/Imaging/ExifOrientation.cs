namespace EmbeddingService.Imaging;

/// <summary>Turns stored pixels upright as EXIF orientation says, as Pillow's <c>ImageOps.exif_transpose</c> does.</summary>
public static class ExifOrientation
{
    /// <summary>Returns the upright image; disposes <paramref name="image"/> when a new one was made.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static RgbaImage Apply(RgbaImage image, int orientation)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (orientation is < 2 or > 8)
        {
            return image;
        }

        var swaps = orientation >= 5;
        var result = swaps ? new RgbaImage(image.Height, image.Width) : new RgbaImage(image.Width, image.Height);
        var source = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(image.Pixels);
        var target = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(result.Pixels);
        int w = image.Width, h = image.Height, outW = result.Width;
        for (var y = 0; y < h; y++)
        {
            var row = source.Slice(y * w, w);
            for (var x = 0; x < w; x++)
            {
                // Where stored pixel (x, y) lands in the upright image.
                var (tx, ty) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    4 => (x, h - 1 - y),
                    5 => (y, x),
                    6 => (h - 1 - y, x),
                    7 => (h - 1 - y, w - 1 - x),
                    _ => (y, w - 1 - x),
                };
                target[(ty * outW) + tx] = row[x];
            }
        }

        image.Dispose();
        return result;
    }
}

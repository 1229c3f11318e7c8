using EmbeddingService.Imaging;

namespace EmbeddingService.Tests.Imaging;

public sealed class ResizeWindowTests
{
    /// <summary>A window's coefficients are exactly those of the same pixels in the full resize.</summary>
    [Theory]
    [InlineData(451, 224, 0, 224)]
    [InlineData(3024, 296, 36, 224)]
    [InlineData(17, 224, 0, 224)]
    [InlineData(300, 2000, 888, 224)]
    [InlineData(4032, 298, 37, 224)]
    public void A_window_equals_the_same_rows_of_the_full_resize(int inSize, int outSize, int first, int count)
    {
        var full = PillowBicubic.Create(inSize, outSize, 0, outSize);
        var window = PillowBicubic.Create(inSize, outSize, first, count);
        Assert.Equal(full.KernelSize, window.KernelSize);
        Assert.Equal(full.Bounds.AsSpan(first * 2, count * 2).ToArray(), window.Bounds);
        Assert.Equal(full.Coefficients.AsSpan(first * full.KernelSize, count * full.KernelSize).ToArray(), window.Coefficients);
    }

    [Fact]
    public void A_long_thin_image_is_preprocessed_from_its_crop_only()
    {
        // 3 x 9,000: the resized long side is 672,000 pixels, of which the crop needs 224.
        using var image = new RgbaImage(3, 9000);
        for (var i = 0; i < image.Pixels.Length; i++) image.Pixels[i] = (byte)(i / 12);
        var settings = new EmbeddingService.Model.PreprocessorSettings(224, 224, 224, 1 / 255f, [0.48145466f, 0.4578275f, 0.40821073f], [0.26862954f, 0.26130258f, 0.27577711f]);
        var pixels = new float[3 * 224 * 224];
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        new ClipImagePreprocessor(settings).Preprocess(image, pixels);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - allocated, 0, 4L << 20);
        Assert.Contains(pixels, p => p != pixels[0]);
    }

    [Theory]
    [InlineData(1, 10_001)]
    [InlineData(20_000, 1)]
    public void Aspect_ratios_beyond_one_to_ten_thousand_are_refused_from_the_header(int width, int height)
    {
        var error = Assert.Throws<ImageRejectedException>(() => ImageDecoder.CheckPixelCount(width, height, 50_000_000));
        Assert.Contains("aspect ratio", error.Message, StringComparison.Ordinal);
    }
}

using EmbeddingService.Imaging;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Imaging;

/// <summary>JPEG DCT-domain downscaling, against the reference computed from the full-size decode.</summary>
public sealed class FastDecodeFidelityTests(ITestOutputHelper output)
{
    private const string LargePhoto = "astronaut-4032x3024.jpg";

    [SharedDataFact]
    public void The_default_fast_decode_keeps_the_reference_fidelity_on_the_large_photo()
    {
        var factor = new ImagingOptions().FastDecodeFactorFor(224);
        Assert.True(factor > 0, "fast decoding is on by default");
        var expected = SharedData.ReadPixels(LargePhoto);
        var actual = ReferencePipelineTests.Preprocess(LargePhoto, factor);
        var (max, mean) = ReferencePipelineTests.Differences(expected, actual);
        using var model = Models.Load(SharedData.ReferenceModel);
        float[] reference = new float[512], fast = new float[512];
        model.Vision.Embed(expected, 1, reference);
        model.Vision.Embed(actual, 1, fast);
        var distance = 1 - Models.Cosine(reference, fast);
        output.WriteLine($"factor {factor}: max |diff| {max:F4}, mean |diff| {mean:F5}, 1 - cos {distance:E2}");
        Assert.InRange(max, 0, 0.02);
        Assert.InRange(mean, 0, 0.002);
        Assert.InRange(distance, -1e-6, 1e-5);
    }

    [SharedDataTheory]
    [InlineData(0.0, 4032, 3024)]
    [InlineData(2.0, 1008, 756)]
    [InlineData(4.0, 1512, 1134)]
    [InlineData(20.0, 4032, 3024)]
    public void Large_jpegs_are_decoded_at_the_smallest_dct_scale_that_keeps_the_short_side(double factor, int width, int height)
    {
        var decoder = new ImageDecoder(new ImagingOptions { FastDecodeFactor = factor });
        using var image = decoder.Decode(File.ReadAllBytes(SharedData.Image(LargePhoto)), minimumShortSide: 224);
        Assert.Equal((width, height), (image.Width, image.Height));
    }

    [SharedDataFact]
    public void Small_images_and_other_formats_are_always_decoded_at_full_size()
    {
        var decoder = new ImageDecoder(new ImagingOptions { FastDecodeFactor = 4 });
        using var jpeg = decoder.Decode(File.ReadAllBytes(SharedData.Image("coffee-progressive.jpg")), minimumShortSide: 224);
        Assert.Equal((600, 400), (jpeg.Width, jpeg.Height));
        using var webp = decoder.Decode(File.ReadAllBytes(SharedData.Image("astronaut-lossless.webp")), minimumShortSide: 224);
        Assert.Equal((512, 512), (webp.Width, webp.Height));
    }
}

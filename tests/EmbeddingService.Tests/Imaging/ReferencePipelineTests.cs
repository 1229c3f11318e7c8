using System.Text.Json;
using EmbeddingService.Imaging;
using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Imaging;

/// <summary>Our decode + preprocess + model against an independent PyTorch/Pillow run on the same files.</summary>
public sealed class ReferencePipelineTests(ITestOutputHelper output)
{
    public static TheoryData<string> Images()
    {
        var data = new TheoryData<string>();
        if (SharedData.Available)
        {
            foreach (var image in SharedData.ReferenceImages) data.Add(image);
        }
        else
        {
            data.Add("(shared data absent)");
        }

        return data;
    }

    [SharedDataTheory]
    [MemberData(nameof(Images))]
    public void Preprocessed_pixels_match_the_reference(string image)
    {
        var actual = Preprocess(image, new ImagingOptions().FastDecodeFactorFor(224));
        var expected = SharedData.ReadPixels(image);
        Assert.Equal(expected.Length, actual.Length);
        var (max, mean) = Differences(expected, actual);
        output.WriteLine($"{image}: max |diff| {max:G4}, mean |diff| {mean:G4}");
        Assert.InRange(max, 0, 0.02);
        Assert.InRange(mean, 0, 0.002);
    }

    [SharedDataFact]
    public void Sixteen_bit_grayscale_gives_the_pixels_of_the_eight_bit_file()
    {
        Assert.Equal(Preprocess("camera.png", 0), Preprocess("camera-16bit.png", 0));
    }

    [SharedDataFact]
    public void Embeddings_of_the_reference_model_match_within_1e_5_cosine()
    {
        var expected = File.ReadLines(Path.Combine(SharedData.Root, "reference", "image-embeddings.jsonl"))
            .Select(line => JsonDocument.Parse(line).RootElement)
            .ToDictionary(e => e.GetProperty("image").GetString()!, e => e.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray());
        using var model = Models.Load(SharedData.ReferenceModel);
        var worst = 0.0;
        foreach (var (image, reference) in expected)
        {
            var pixels = Preprocess(image, new ImagingOptions().FastDecodeFactorFor(224));
            var embedding = new float[512];
            model.Vision.Embed(pixels, 1, embedding);
            var distance = 1 - Models.Cosine(reference, embedding);
            output.WriteLine($"{image}: 1 - cos = {distance:E2}");
            worst = Math.Max(worst, distance);
        }

        Assert.Equal(SharedData.ReferenceImages.Count(), expected.Count);
        Assert.InRange(worst, 0, 1e-5);
    }

    internal static float[] Preprocess(string image, double fastDecodeFactor, PreprocessorSettings? model = null)
    {
        var settings = model ?? PreprocessorSettings.Read(Path.Combine(SharedData.ReferenceModel, "preprocessor_config.json"));
        var decoder = new ImageDecoder(new ImagingOptions { FastDecodeFactor = fastDecodeFactor });
        var preprocessor = new ClipImagePreprocessor(settings);
        using var decoded = decoder.Decode(File.ReadAllBytes(SharedData.Image(image)), settings.ShortestEdge);
        var pixels = new float[preprocessor.OutputLength];
        preprocessor.Preprocess(decoded, pixels);
        return pixels;
    }

    internal static (double Max, double Mean) Differences(float[] expected, float[] actual)
    {
        double max = 0, sum = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var difference = Math.Abs(expected[i] - actual[i]);
            max = Math.Max(max, difference);
            sum += difference;
        }

        return (max, sum / expected.Length);
    }
}

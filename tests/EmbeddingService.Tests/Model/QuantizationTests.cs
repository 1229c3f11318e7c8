using EmbeddingService.Hosting;
using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Model;

/// <summary>The quantize command on the generated tiny model and on the independent torch export: int8 close to fp32.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class QuantizationTests(TinyModelFixture tiny, ITestOutputHelper output)
{
    [SharedDataFact]
    public void Quantized_towers_of_the_generated_model_are_close_to_fp32() => AssertClose(tiny.Directory);

    [SharedDataFact]
    public void Quantized_towers_of_the_torch_export_are_close_to_fp32() => AssertClose(SharedData.ReferenceModel);

    private void AssertClose(string source)
    {
        using var copy = new TempDirectory("quantize");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy.Path, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        Assert.Equal(0, QuantizeCommand.Run(["--dir", copy.Path]));
        using var fp32 = Models.Load(copy.Path);
        using var int8 = Models.Load(copy.Path, ModelVariant.Quantized);

        var worst = 0.0;
        foreach (var image in SharedData.ReferenceImages)
        {
            var pixels = SharedData.ReadPixels(image);
            float[] a = new float[512], b = new float[512];
            fp32.Vision.Embed(pixels, 1, a);
            int8.Vision.Embed(pixels, 1, b);
            worst = Math.Max(worst, 1 - Models.Cosine(a, b));
        }

        var worstText = 0.0;
        foreach (var text in File.ReadLines(Path.Combine(SharedData.Root, "reference", "texts.txt")))
        {
            var ids = new long[77];
            fp32.Tokenizer.Encode(text, ids);
            float[] a = new float[512], b = new float[512];
            fp32.Text.Embed(ids.ToArray(), 1, a);
            int8.Text.Embed(ids.ToArray(), 1, b);
            worstText = Math.Max(worstText, 1 - Models.Cosine(a, b));
        }

        output.WriteLine($"max 1 - cos vs fp32: images {worst:E2}, texts {worstText:E2}");
        Assert.InRange(worst, -1e-6, 1e-3);
        Assert.InRange(worstText, -1e-6, 1e-3);
    }
}

public sealed class GeneratedVariantTests
{
    [Fact]
    public void The_generator_writes_the_quantized_variant_that_the_service_loads()
    {
        using var directory = new TempDirectory("variants");
        SyntheticModel.ModelDirectoryWriter.Write(SyntheticModel.ClipArchitecture.Tiny, 3, directory.Path, quantized: true);
        using var int8 = Models.Load(directory.Path, ModelVariant.Quantized);
        using var fp32 = Models.Load(directory.Path);
        var pixels = new float[int8.Vision.ItemLength];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = MathF.Sin(i * 0.01f);
        float[] a = new float[512], b = new float[512];
        fp32.Vision.Embed(pixels, 1, a);
        int8.Vision.Embed(pixels, 1, b);
        Assert.InRange(1 - Models.Cosine(a, b), -1e-6, 1e-3);
        // Smaller (at tiny width the float32 patch convolution dominates; vit-b32's vision file goes from 351 to 96 MB).
        Assert.True(new FileInfo(Path.Combine(directory.Path, "onnx", "vision_model_quantized.onnx")).Length
            < new FileInfo(Path.Combine(directory.Path, "onnx", "vision_model.onnx")).Length);
    }
}

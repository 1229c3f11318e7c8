using EmbeddingService.Quantization;
using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Model;

/// <summary>The quantize command on the generated tiny model and on the independent torch export: int8 and fp16 close to fp32.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class QuantizationTests(TinyModelFixture tiny, ITestOutputHelper output)
{
    [SharedDataTheory]
    [InlineData("quantized")]
    [InlineData("fp16")]
    public void Variants_of_the_generated_model_are_close_to_fp32(string variant) => AssertClose(tiny.Directory, variant);

    [SharedDataTheory]
    [InlineData("quantized")]
    [InlineData("fp16")]
    public void Variants_of_the_torch_export_are_close_to_fp32(string variant) => AssertClose(SharedData.ReferenceModel, variant);

    [Fact]
    public void The_standard_onnx_form_of_int8_gives_the_contrib_operators_vectors()
    {
        using var contrib = TempDirectory.CopyOf(tiny.Directory);
        using var standard = TempDirectory.CopyOf(tiny.Directory);
        Assert.Equal(0, QuantizeCommand.Run(["--dir", contrib.Path]));
        Assert.Equal(0, QuantizeCommand.Run(["--dir", standard.Path, "--operator", "standard"]));
        using var a = Models.Load(contrib.Path, ModelVariant.Quantized);
        using var b = Models.Load(standard.Path, ModelVariant.Quantized);
        Assert.InRange(ImageDistance(a, b), -1e-6, 1e-6);
    }

    [Fact]
    public void Quantize_checks_what_it_wrote_on_this_cpu_and_refuses_it_beyond_the_bound_unless_forced()
    {
        using var copy = TempDirectory.CopyOf(tiny.Directory);
        var written = Path.Combine(copy.Path, "onnx", "vision_model_quantized.onnx");
        var (code, output, error) = Console(["--dir", copy.Path, "--max-error", "1e-9"]);
        Assert.Equal(1, code);
        Assert.Contains("checked on this CPU:", output, StringComparison.Ordinal);
        Assert.Matches(@"vision: max 1 - cos [0-9.]+E-0\d+, mean [0-9.]+E-0\d+ over 12 images", output);
        Assert.Matches(@"text: max 1 - cos [0-9.]+E-0\d+, mean [0-9.]+E-0\d+ over 16 texts", output);
        Assert.Contains("nothing was moved into place", error, StringComparison.Ordinal);
        Assert.False(File.Exists(written));
        Assert.Equal([Path.Combine(copy.Path, "onnx")], Directory.GetDirectories(copy.Path));

        (code, _, error) = Console(["--dir", copy.Path, "--max-error", "1e-9", "--force"]);
        Assert.Equal(0, code);
        Assert.Contains("WARNING", error, StringComparison.Ordinal);
        Assert.True(File.Exists(written));

        Assert.Equal(2, Console(["--dir", copy.Path, "--max-error", "lots"]).Code);
        Assert.Equal(2, Console(["--dir", copy.Path, "--scheme", "int4"]).Code);
    }

    /// <summary>Runs quantize with its console captured (tests in one collection do not run at once).</summary>
    private static (int Code, string Output, string Error) Console(string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var (oldOut, oldError) = (System.Console.Out, System.Console.Error);
        System.Console.SetOut(output);
        System.Console.SetError(error);
        try
        {
            return (QuantizeCommand.Run(args), output.ToString(), error.ToString());
        }
        finally
        {
            System.Console.SetOut(oldOut);
            System.Console.SetError(oldError);
        }
    }

    [Fact]
    public void A_graph_it_cannot_rewrite_is_refused_and_nothing_is_written()
    {
        using var copy = TempDirectory.CopyOf(tiny.Directory);
        var vision = Path.Combine(copy.Path, "onnx", "vision_model.onnx");
        Assert.Equal(0, QuantizeCommand.Run(["--dir", copy.Path]));
        File.Copy(Path.Combine(copy.Path, "onnx", "vision_model_quantized.onnx"), vision, overwrite: true);
        File.Delete(Path.Combine(copy.Path, "onnx", "vision_model_quantized.onnx"));
        // An already quantized graph.
        Assert.Equal(1, QuantizeCommand.Run(["--dir", copy.Path]));
        Assert.False(File.Exists(Path.Combine(copy.Path, "onnx", "vision_model_quantized.onnx")));
        File.WriteAllText(vision, "not a model");
        Assert.Equal(1, QuantizeCommand.Run(["--dir", copy.Path, "--variant", "fp16"]));
        Assert.Empty(Directory.GetFiles(Path.Combine(copy.Path, "onnx"), "*.tmp"));
    }

    /// <summary>1 - cos of two models' embeddings of one smooth synthetic image.</summary>
    internal static double ImageDistance(ClipModel a, ClipModel b)
    {
        var pixels = new float[a.Vision.ItemLength];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = MathF.Sin(i * 0.01f);
        float[] x = new float[512], y = new float[512];
        a.Vision.Embed(pixels, 1, x);
        b.Vision.Embed(pixels, 1, y);
        return 1 - Models.Cosine(x, y);
    }

    private void AssertClose(string source, string variantName)
    {
        var variant = variantName == "fp16" ? ModelVariant.Fp16 : ModelVariant.Quantized;
        using var copy = TempDirectory.CopyOf(source);
        Assert.Equal(0, QuantizeCommand.Run(["--dir", copy.Path, "--variant", variantName]));
        using var fp32 = Models.Load(copy.Path);
        using var int8 = Models.Load(copy.Path, variant);

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

        output.WriteLine($"{variantName}: max 1 - cos vs fp32: images {worst:E2}, texts {worstText:E2}");
        Assert.InRange(worst, -1e-6, 1e-3);
        Assert.InRange(worstText, -1e-6, 1e-3);
    }
}

public sealed class GeneratedVariantTests
{
    [Theory]
    [InlineData(ModelVariant.Quantized)]
    [InlineData(ModelVariant.Fp16)]
    public void The_generator_writes_variants_that_the_service_loads(ModelVariant variant)
    {
        using var directory = new TempDirectory("variants");
        SyntheticModel.ModelDirectoryWriter.Write(SyntheticModel.ClipArchitecture.Tiny, 3, directory.Path, variants: ["quantized", "fp16"]);
        using var rewritten = Models.Load(directory.Path, variant);
        using var fp32 = Models.Load(directory.Path);
        Assert.InRange(QuantizationTests.ImageDistance(fp32, rewritten), -1e-6, 1e-3);
        // Smaller (at tiny width the float32 patch convolution dominates; vit-b32's vision file goes from 351 to 96 MB).
        Assert.True(new FileInfo(Path.Combine(directory.Path, "onnx", $"vision_model{ModelFiles.Suffix(variant)}.onnx")).Length
            < new FileInfo(Path.Combine(directory.Path, "onnx", "vision_model.onnx")).Length);
    }
}

public sealed class GemmQuantizationTests
{
    /// <summary>Exports that write linear layers as Gemm (B transposed, bias C) are quantized like MatMul ones.</summary>
    [Theory]
    [InlineData(Onnx.Int8Operator.DynamicQuantizeMatMul)]
    [InlineData(Onnx.Int8Operator.MatMulInteger)]
    public void Gemm_layers_are_quantized_and_stay_close_to_fp32(Onnx.Int8Operator op)
    {
        var weights = new SyntheticModel.WeightSource(5);
        var g = new SyntheticModel.OnnxGraphBuilder("gemms");
        g.Input("x", Onnx.Proto.TensorProto.Types.DataType.Float, "batch", 64);
        var w1 = g.Weight("w1", weights.Uniform("w1", 96 * 64, 0.1f), 96, 64);
        var c1 = g.Weight("c1", weights.Uniform("c1", 96, 0.1f), 96);
        var h = g.Node("Gemm", ["x", w1, c1], SyntheticModel.OnnxGraphBuilder.IntAttr("transB", 1));
        var w2 = g.Weight("w2", weights.Uniform("w2", 96 * 48, 0.1f), 96, 48);
        var h2 = g.Node("Gemm", [h, w2]);
        var w3 = g.Weight("w3", weights.Uniform("w3", 48 * 16, 0.1f), 48, 16);
        g.NodeNamed("MatMul", "y", [h2, w3]);
        var (model, original) = Finish(g);

        var report = Onnx.DynamicInt8Quantizer.Quantize(model, op);
        Assert.Equal(2, report.Changed);
        Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "Gemm");

        var (expected, actual) = RunBoth(original, model);
        for (var row = 0; row < 4; row++)
        {
            Assert.InRange(1 - Models.Cosine(expected.AsSpan(row * 16, 16), actual.AsSpan(row * 16, 16)), -1e-6, 1e-3);
        }
    }

    [Fact]
    public void A_weight_read_by_two_matmuls_is_quantized_once_and_its_float_form_dropped()
    {
        var weights = new SyntheticModel.WeightSource(6);
        var g = new SyntheticModel.OnnxGraphBuilder("shared");
        g.Input("x", Onnx.Proto.TensorProto.Types.DataType.Float, "batch", 64);
        var shared = g.Weight("shared", weights.Uniform("shared", 64 * 64, 0.1f), 64, 64);
        var a = g.Node("MatMul", ["x", shared]);
        var b = g.Node("MatMul", [a, shared]);
        var projection = g.Weight("projection", weights.Uniform("projection", 64 * 16, 0.1f), 64, 16);
        g.NodeNamed("MatMul", "y", [b, projection]);
        var (model, original) = Finish(g);

        var report = Onnx.DynamicInt8Quantizer.Quantize(model);
        Assert.Equal(2, report.Changed);
        Assert.Single(model.Graph.Initializer, t => t.Name == "shared_quantized");
        Assert.DoesNotContain(model.Graph.Initializer, t => t.Name == "shared");
        var (expected, actual) = RunBoth(original, model);
        Assert.InRange(1 - Models.Cosine(expected.AsSpan(0, 16), actual.AsSpan(0, 16)), -1e-6, 1e-3);
    }

    /// <summary>The graph with its output y [batch, 16], as a model and as the bytes it had before any rewrite.</summary>
    private static (Onnx.Proto.ModelProto Model, byte[] Original) Finish(SyntheticModel.OnnxGraphBuilder g)
    {
        g.Output("y", Onnx.Proto.TensorProto.Types.DataType.Float, "batch", 16);
        var model = new Onnx.Proto.ModelProto { IrVersion = 8, Graph = g.Graph };
        model.OpsetImport.Add(new Onnx.Proto.OperatorSetIdProto { Domain = string.Empty, Version = 17 });
        return (model, Google.Protobuf.MessageExtensions.ToByteArray(model));
    }

    /// <summary>y for four rows of x [4, 64] from the original and the rewritten model.</summary>
    private static (float[] Expected, float[] Actual) RunBoth(byte[] original, Onnx.Proto.ModelProto rewritten)
    {
        var input = new float[4 * 64];
        for (var i = 0; i < input.Length; i++) input[i] = MathF.Sin(i * 0.37f);
        // As the service serves it on this CPU: weights that would saturate its int8 kernel go in as u8 (Int8Saturation).
        if (EmbeddingService.Cpu.Int8KernelExtensions.SaturatesOnPairs(EmbeddingService.Cpu.CpuFeatures.Current.Int8Kernel))
        {
            Onnx.Int8Saturation.MakeExact(rewritten);
        }

        return (Run(original, input), Run(Google.Protobuf.MessageExtensions.ToByteArray(rewritten), input));
    }

    private static float[] Run(byte[] model, float[] input)
    {
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model);
        using var value = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(input, [4, 64]);
        using var options = new Microsoft.ML.OnnxRuntime.RunOptions();
        using var outputs = session.Run(options, ["x"], [value], ["y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }
}

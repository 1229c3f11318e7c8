using EmbeddingService.Model;
using Google.Protobuf;
using Microsoft.Extensions.Configuration;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using Onnx.Proto;

namespace EmbeddingService.Hosting;

/// <summary>
/// <c>quantize [--dir DIR] [--variant quantized|fp16] [--operator contrib|standard]</c>: writes
/// <c>onnx/*_quantized.onnx</c> (dynamic int8, see <see cref="DynamicInt8Quantizer"/>) or <c>onnx/*_fp16.onnx</c>
/// (see <see cref="Float16Converter"/>) beside a model's fp32 towers, so <c>MODEL_VARIANT</c> can serve them.
/// </summary>
public static class QuantizeCommand
{
    public const string Name = "quantize";
    private const string Usage = "usage: EmbeddingService quantize [--dir MODEL_DIR] [--variant quantized|fp16] [--operator contrib|standard]";

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var options = new ModelOptions();
        configuration.Bind(options);
        var directory = options.ModelDir;
        var variant = ModelVariant.Quantized;
        var int8Operator = Int8Operator.DynamicQuantizeMatMul;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i], i + 1 < args.Length ? args[i + 1] : null)
            {
                case ("--dir", { } value):
                    directory = value;
                    break;
                case ("--variant", VariantRewriter.Quantized):
                    variant = ModelVariant.Quantized;
                    break;
                case ("--variant", VariantRewriter.Float16):
                    variant = ModelVariant.Fp16;
                    break;
                case ("--operator", "contrib"):
                    int8Operator = Int8Operator.DynamicQuantizeMatMul;
                    break;
                case ("--operator", "standard"):
                    int8Operator = Int8Operator.MatMulInteger;
                    break;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }

            i++;
        }

        var files = new ModelFiles(directory, ModelVariant.Fp32);
        var target = new ModelFiles(directory, variant);
        var variantName = variant == ModelVariant.Fp16 ? VariantRewriter.Float16 : VariantRewriter.Quantized;
        foreach (var (source, destination) in new[] { (files.VisionModel, target.VisionModel), (files.TextModel, target.TextModel) })
        {
            if (!File.Exists(source))
            {
                Console.Error.WriteLine($"{source} does not exist: quantize reads a model directory's fp32 towers.");
                return 1;
            }

            if (Rewrite(source, destination, variantName, int8Operator) is { } error)
            {
                Console.Error.WriteLine($"{source}: {error}");
                return 1;
            }
        }

        return 0;
    }

    /// <returns>Null when the variant was written, else why not.</returns>
    private static string? Rewrite(string source, string destination, string variant, Int8Operator int8Operator)
    {
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(source);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            return $"not an ONNX model ({e.Message})";
        }

        RewriteReport report;
        try
        {
            report = VariantRewriter.Rewrite(model, variant, int8Operator);
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }

        // Written beside, loaded once to prove ONNX Runtime accepts it, then moved into place: a reader never sees
        // half a model, and a graph the rewrite got wrong never replaces a working file.
        var temporary = destination + ".tmp";
        using (var stream = File.Create(temporary))
        {
            model.WriteTo(stream);
        }

        try
        {
            using var session = new InferenceSession(temporary);
        }
        catch (OnnxRuntimeException e)
        {
            File.Delete(temporary);
            return $"the {variant} graph this version wrote does not load in ONNX Runtime, so nothing was written: {e.Message}";
        }

        File.Move(temporary, destination, overwrite: true);
        Console.WriteLine($"{destination}: {VariantRewriter.Describe(variant, report)}");
        return null;
    }
}

using Onnx.Proto;

namespace Onnx;

/// <summary>
/// The variants a fp32 tower can be rewritten into, named as the files of the Hugging Face / transformers.js layout
/// name them (<c>onnx/vision_model_quantized.onnx</c>, <c>onnx/text_model_fp16.onnx</c>).
/// </summary>
public static class VariantRewriter
{
    public const string Quantized = "quantized";
    public const string Float16 = "fp16";

    public static IReadOnlyList<string> Variants { get; } = [Quantized, Float16];

    /// <summary>Rewrites <paramref name="model"/> in place.</summary>
    /// <exception cref="InvalidDataException">The graph cannot be rewritten into the variant.</exception>
    public static RewriteReport Rewrite(ModelProto model, string variant, Int8Operator int8Operator = Int8Operator.DynamicQuantizeMatMul,
        Int8WeightScheme scheme = Int8WeightScheme.Full) => variant switch
    {
        Quantized => DynamicInt8Quantizer.Quantize(model, int8Operator, scheme: scheme),
        Float16 => Float16Converter.Convert(model),
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, $"Variants are {string.Join(", ", Variants)}."),
    };

    public static string Describe(string variant, RewriteReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var what = variant == Quantized
            ? $"{report.Changed} MatMuls to int8{(report.Tables > 0 ? $", {report.Tables} embedding table{(report.Tables > 1 ? "s" : string.Empty)} to int16" : string.Empty)}"
            : $"{report.Changed} tensors and casts to float16";
        return System.FormattableString.Invariant($"{what}, weights {report.BytesBefore / 1e6:F1} MB -> {report.BytesAfter / 1e6:F1} MB");
    }
}

using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

/// <summary>What a quantization did.</summary>
public sealed record QuantizationReport(int MatMuls, long FloatBytes, long Int8Bytes);

/// <summary>
/// Dynamic int8 quantization: every <c>MatMul</c> whose weight is a constant float32 [K, N] becomes
/// <c>com.microsoft</c> <c>DynamicQuantizeMatMul</c> with int8 weights and one scale per output column (symmetric,
/// zero point 0); ONNX Runtime quantizes the activations at run time. Convolutions (the patch embedding), gathers (the
/// token embedding table) and everything else stay float32.
/// </summary>
public static class DynamicInt8Quantizer
{
    public const string ContribDomain = "com.microsoft";

    /// <exception cref="InvalidDataException">The graph has no MatMul with a constant float32 weight to quantize.</exception>
    public static QuantizationReport Quantize(ModelProto model, Func<string, bool>? keepFloat = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var uses = graph.Node.SelectMany(n => n.Input).GroupBy(i => i, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        int count = 0;
        long floatBytes = 0, int8Bytes = 0;
        foreach (var node in graph.Node)
        {
            if (node.OpType != "MatMul" || node.Domain.Length > 0 || node.Input.Count != 2
                || !initializers.TryGetValue(node.Input[1], out var weight) || weight.DataType != (int)DataType.Float || weight.Dims.Count != 2
                || keepFloat?.Invoke(weight.Name) == true)
            {
                continue;
            }

            var (rows, columns) = ((int)weight.Dims[0], (int)weight.Dims[1]);
            var values = Floats(weight);
            var scales = new float[columns];
            for (var k = 0; k < rows; k++)
            {
                for (var n = 0; n < columns; n++) scales[n] = Math.Max(scales[n], Math.Abs(values[(k * columns) + n]));
            }

            for (var n = 0; n < columns; n++) scales[n] = scales[n] > 0 ? scales[n] / 127 : 1;
            var quantized = new sbyte[values.Length];
            for (var k = 0; k < rows; k++)
            {
                for (var n = 0; n < columns; n++)
                {
                    quantized[(k * columns) + n] = (sbyte)Math.Clamp(MathF.Round(values[(k * columns) + n] / scales[n]), -127, 127);
                }
            }

            var name = weight.Name;
            graph.Initializer.Add(Tensor($"{name}_quantized", DataType.Int8, MemoryMarshal.AsBytes(quantized.AsSpan()), rows, columns));
            graph.Initializer.Add(Tensor($"{name}_scale", DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()), columns));
            graph.Initializer.Add(Tensor($"{name}_zero_point", DataType.Int8, new byte[columns], columns));
            node.OpType = "DynamicQuantizeMatMul";
            node.Domain = ContribDomain;
            node.Input[1] = $"{name}_quantized";
            node.Input.Add($"{name}_scale");
            node.Input.Add($"{name}_zero_point");
            if (uses[name] == 1)
            {
                graph.Initializer.Remove(weight);
            }

            count++;
            floatBytes += values.Length * sizeof(float);
            int8Bytes += quantized.Length + (columns * (sizeof(float) + 1));
        }

        if (count == 0)
        {
            throw new InvalidDataException("The graph has no MatMul with a constant float32 [K, N] weight: there is nothing to quantize.");
        }

        if (!model.OpsetImport.Any(o => o.Domain == ContribDomain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = ContribDomain, Version = 1 });
        }

        return new QuantizationReport(count, floatBytes, int8Bytes);
    }

    private static float[] Floats(TensorProto tensor) => tensor.RawData.Length > 0
        ? MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray()
        : [.. tensor.FloatData];

    private static TensorProto Tensor(string name, DataType type, ReadOnlySpan<byte> bytes, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }
}

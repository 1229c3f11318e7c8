using Google.Protobuf;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

/// <summary>What <see cref="Int8Saturation.Inspect"/> found in a graph's integer products.</summary>
/// <param name="IntegerNodes">Nodes that multiply u8 activations by a constant integer weight.</param>
/// <param name="SignedWeights">Of their weights, those stored as s8 (the ones a u8 x s8 kernel reads).</param>
/// <param name="RiskyPairs">Same-sign pairs over 128 in those (for convolutions: values over 64).</param>
/// <param name="RiskyWeights">Names of the weights that have any.</param>
public sealed record Int8SaturationReport(int IntegerNodes, int SignedWeights, long RiskyPairs, IReadOnlyList<string> RiskyWeights)
{
    /// <summary>Whether a u8 x s8 kernel that adds pairs in int16 (AVX2, AVX-512 without VNNI) can saturate on this graph.</summary>
    public bool CanSaturate => RiskyPairs > 0;

    public string Describe() => IntegerNodes == 0
        ? "no integer products"
        : FormattableString.Invariant($"{IntegerNodes} integer products, {SignedWeights} with s8 weights, {RiskyPairs:N0} weight pairs over the int16 bound in {RiskyWeights.Count} of them");
}

/// <summary>
/// Reads a quantized graph's own weights (whoever wrote it: this project's quantize, or ONNX Runtime's quantizer as
/// in Xenova's <c>*_quantized.onnx</c>) to tell whether it can saturate a u8 x s8 kernel, and rewrites the weights that
/// can into the same values as u8 around zero point 128, which ONNX Runtime runs through its exact u8 x u8 kernels.
/// </summary>
public static class Int8Saturation
{
    private enum Layout
    {
        MatMul,
        Conv,
    }

    /// <summary>The ops, their weight and weight zero point inputs, and the input that says whether A is u8.</summary>
    private static readonly Dictionary<string, (int Weight, int ZeroPoint, int ActivationZeroPoint, Layout Layout)> Ops = new(StringComparer.Ordinal)
    {
        ["DynamicQuantizeMatMul"] = (1, 3, -1, Layout.MatMul),
        ["MatMulIntegerToFloat"] = (1, 5, 4, Layout.MatMul),
        ["MatMulInteger"] = (1, 3, 2, Layout.MatMul),
        ["QLinearMatMul"] = (3, 5, 2, Layout.MatMul),
        ["ConvInteger"] = (1, 3, 2, Layout.Conv),
        ["QLinearConv"] = (3, 5, 2, Layout.Conv),
    };

    public static Int8SaturationReport Inspect(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (nodes, signed, risky) = Scan(model.Graph);
        return new Int8SaturationReport(nodes.Count, signed.Count, risky.Values.Sum(), [.. risky.Keys]);
    }

    /// <summary>
    /// Stores every s8 weight that can saturate as u8 (value + 128) with its zero point + 128: (w + 128) - (z + 128) is
    /// w - z, so the products are the same numbers, computed by kernels that widen to int16 before multiplying.
    /// </summary>
    /// <returns>How many weights were rewritten.</returns>
    public static int MakeExact(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var (nodes, _, risky) = Scan(graph);
        if (risky.Count == 0)
        {
            return 0;
        }

        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        // The s8 forms this replaces, dropped below once no node reads them (other initializers are left alone).
        var replaced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in nodes.Where(n => risky.ContainsKey(n.Input[Ops[n.OpType].Weight])))
        {
            var (weightInput, zeroPointInput, _, _) = Ops[node.OpType];
            var weight = initializers[node.Input[weightInput]];
            var unsignedName = weight.Name + "_u8";
            if (!initializers.ContainsKey(unsignedName))
            {
                var values = OnnxTensors.Bytes(weight);
                Int8Weights.ToUnsigned(values);
                Add(graph, initializers, OnnxTensors.Create(unsignedName, DataType.Uint8, values, [.. weight.Dims]));
            }

            replaced.Add(weight.Name);
            node.Input[weightInput] = unsignedName;
            var hasZeroPoint = node.Input.Count > zeroPointInput && node.Input[zeroPointInput].Length > 0;
            byte[] zeroPoints;
            long[] dims;
            if (hasZeroPoint)
            {
                var zeroPoint = initializers[node.Input[zeroPointInput]];
                replaced.Add(zeroPoint.Name);
                (zeroPoints, dims) = (OnnxTensors.Bytes(zeroPoint), [.. zeroPoint.Dims]);
                Int8Weights.ToUnsigned(zeroPoints);
            }
            else
            {
                // DynamicQuantizeMatMul wants its zero points shaped as its scales; the others take a scalar.
                var scale = node.OpType == "DynamicQuantizeMatMul" && initializers.TryGetValue(node.Input[2], out var s) ? s : null;
                dims = scale is null ? [] : [.. scale.Dims];
                zeroPoints = Enumerable.Repeat(Int8Weights.UnsignedZeroPoint, (int)dims.Aggregate(1L, (a, b) => a * b)).ToArray();
            }

            var zeroPointName = unsignedName + "_zero_point";
            if (!initializers.ContainsKey(zeroPointName))
            {
                Add(graph, initializers, OnnxTensors.Create(zeroPointName, DataType.Uint8, zeroPoints, dims));
            }

            while (node.Input.Count <= zeroPointInput) node.Input.Add(string.Empty);
            node.Input[zeroPointInput] = zeroPointName;
        }

        var read = graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var unread in graph.Initializer.Where(t => replaced.Contains(t.Name) && !read.Contains(t.Name)).ToList()) graph.Initializer.Remove(unread);
        return risky.Count;
    }

    private static (List<NodeProto> Nodes, HashSet<string> Signed, Dictionary<string, long> Risky) Scan(GraphProto graph)
    {
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var nodes = new List<NodeProto>();
        var signed = new HashSet<string>(StringComparer.Ordinal);
        var risky = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (!Ops.TryGetValue(node.OpType, out var op) || node.Input.Count <= op.Weight
                || !initializers.TryGetValue(node.Input[op.Weight], out var weight))
            {
                continue;
            }

            // A s8 activation (its zero point stored as s8) runs through other kernels (s8 x s8), not the u8 x s8 ones.
            if (op.ActivationZeroPoint >= 0 && node.Input.Count > op.ActivationZeroPoint
                && initializers.TryGetValue(node.Input[op.ActivationZeroPoint], out var activationZeroPoint)
                && activationZeroPoint.DataType == (int)DataType.Int8)
            {
                continue;
            }

            nodes.Add(node);
            if (weight.DataType != (int)DataType.Int8 || !signed.Add(weight.Name) || weight.Dims.Count < 2)
            {
                continue;
            }

            var values = OnnxTensors.Bytes(weight);
            var count = op.Layout == Layout.MatMul
                ? Int8Weights.RiskyPairs(values, (int)weight.Dims[^2], (int)weight.Dims[^1])
                : Int8Weights.LargeValues(values);
            if (count > 0) risky[weight.Name] = count;
        }

        return (nodes, signed, risky);
    }

    private static void Add(GraphProto graph, Dictionary<string, TensorProto> initializers, TensorProto tensor)
    {
        graph.Initializer.Add(tensor);
        initializers[tensor.Name] = tensor;
    }
}

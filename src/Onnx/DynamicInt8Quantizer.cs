using System.Runtime.InteropServices;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

/// <summary>
/// Dynamic int8 quantization: every <c>MatMul</c> (or <c>Gemm</c>) whose weight is a constant float32 [K, N] gets int8 weights with one
/// scale per output column (symmetric, zero point 0; <see cref="Int8WeightScheme"/> says how they are chosen so that no
/// CPU's kernel saturates), and ONNX Runtime quantizes the activations at run time.
/// Large embedding tables read by <c>Gather</c> (the text tower's 49,408 x 512 token table, 101 MB) become int16 with
/// a scale per row, looked up beside the rows: half the memory, for no measurable change (int8 rows cost the torch
/// export's 64-wide text tower 1.3e-3 of 1 - cos). Convolutions (the
/// patch embedding) and everything else stay float32, and so does the last MatMul, the projection into the
/// embedding space, unless <paramref name="keepProjectionFloat"/> is false: it is 0.01% of the work and a third of
/// the error (docs/decisions.md).
/// </summary>
public static class DynamicInt8Quantizer
{
    public const string ContribDomain = "com.microsoft";

    /// <exception cref="InvalidDataException">The graph is already quantized or has no MatMul with a constant float32 weight.</exception>
    public static RewriteReport Quantize(ModelProto model, Int8Operator op = Int8Operator.DynamicQuantizeMatMul, bool keepProjectionFloat = true,
        Int8WeightScheme scheme = Int8WeightScheme.Full)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        if (graph.Node.FirstOrDefault(n => n.OpType is "DynamicQuantizeMatMul" or "MatMulInteger" or "DynamicQuantizeLinear") is { } rewritten)
        {
            throw new InvalidDataException($"The graph is already quantized (node {rewritten.Name} is {rewritten.OpType}); quantize reads the fp32 export.");
        }

        GemmsAsMatMuls(graph);
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var candidates = graph.Node.Where(node => node.OpType == "MatMul" && node.Domain.Length == 0 && node.Input.Count == 2
            && initializers.TryGetValue(node.Input[1], out var weight) && weight.DataType == (int)DataType.Float && weight.Dims.Count == 2).ToList();
        if (keepProjectionFloat && candidates.Count > 1)
        {
            candidates.RemoveAt(candidates.Count - 1);
        }

        if (candidates.Count == 0)
        {
            throw new InvalidDataException("The graph has no MatMul with a constant float32 [K, N] weight: there is nothing to quantize.");
        }

        var replacements = new Dictionary<NodeProto, NodeProto[]>();
        // Each weight is rewritten once, however many nodes read it.
        var rewrittenWeights = new HashSet<string>(StringComparer.Ordinal);
        long floatBytes = 0, int8Bytes = 0;
        var tables = 0;
        foreach (var node in candidates)
        {
            var weight = initializers[node.Input[1]];
            var name = weight.Name;
            if (rewrittenWeights.Add(name))
            {
                var (quantized, scales) = Int8Weights.QuantizePerColumn(OnnxTensors.Floats(weight), (int)weight.Dims[0], (int)weight.Dims[1], scheme);
                var (type, zeroPoint) = scheme == Int8WeightScheme.ZeroPoint128 ? (DataType.Uint8, Int8Weights.UnsignedZeroPoint) : (DataType.Int8, (byte)0);
                if (type == DataType.Uint8) Int8Weights.ToUnsigned(quantized);
                graph.Initializer.Add(OnnxTensors.Create($"{name}_quantized", type, quantized, weight.Dims[0], weight.Dims[1]));
                graph.Initializer.Add(OnnxTensors.Create($"{name}_scale", DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()), scales.Length));
                graph.Initializer.Add(OnnxTensors.Create($"{name}_zero_point", type, Enumerable.Repeat(zeroPoint, scales.Length).ToArray(), scales.Length));
                floatBytes += quantized.Length * sizeof(float);
                int8Bytes += quantized.Length + (scales.Length * (sizeof(float) + 1));
            }

            if (op == Int8Operator.DynamicQuantizeMatMul)
            {
                node.OpType = "DynamicQuantizeMatMul";
                node.Domain = ContribDomain;
                node.Input[1] = $"{name}_quantized";
                node.Input.Add($"{name}_scale");
                node.Input.Add($"{name}_zero_point");
            }
            else
            {
                replacements[node] = MatMulIntegerNodes(node, name);
            }
        }

        foreach (var gather in graph.Node.Where(n => n.OpType == "Gather" && n.Domain.Length == 0 && n.Input.Count == 2
            && !n.Attribute.Any(a => a.Name == "axis" && a.I != 0)
            && initializers.TryGetValue(n.Input[0], out var table) && table.DataType == (int)DataType.Float && table.Dims is [>= MinTableRows, _]).ToList())
        {
            var table = initializers[gather.Input[0]];
            replacements[gather] = TableLookupNodes(gather, table.Name);
            if (rewrittenWeights.Add(table.Name))
            {
                var (quantized, scales) = QuantizePerRow(table);
                graph.Initializer.Add(OnnxTensors.Create($"{table.Name}_quantized", DataType.Int16, MemoryMarshal.AsBytes(quantized.AsSpan()), table.Dims[0], table.Dims[1]));
                graph.Initializer.Add(OnnxTensors.Create($"{table.Name}_row_scale", DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()), scales.Length, 1));
                floatBytes += quantized.Length * sizeof(float);
                int8Bytes += (quantized.Length * sizeof(short)) + (scales.Length * sizeof(float));
                tables++;
            }
        }

        Replace(graph, replacements, rewrittenWeights);

        if (op == Int8Operator.DynamicQuantizeMatMul && !model.OpsetImport.Any(o => o.Domain == ContribDomain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = ContribDomain, Version = 1 });
        }

        return new RewriteReport(candidates.Count, floatBytes, int8Bytes, tables);
    }

    /// <summary>
    /// Rewrites each <c>Gemm</c> with a constant float32 B (alpha = beta = 1, A not transposed) as <c>MatMul</c> with
    /// B as [K, N] (transposed at rewrite time when transB = 1), then <c>Add</c> of C: what the MatMul pass quantizes.
    /// </summary>
    private static void GemmsAsMatMuls(GraphProto graph)
    {
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var replacements = new Dictionary<NodeProto, NodeProto[]>();
        var transposedFrom = new HashSet<string>(StringComparer.Ordinal);
        foreach (var gemm in graph.Node.Where(n => n.OpType == "Gemm" && n.Domain.Length == 0 && n.Input.Count is 2 or 3))
        {
            long Int(string name, long fallback) => gemm.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? fallback;
            float Float(string name) => gemm.Attribute.FirstOrDefault(a => a.Name == name)?.F ?? 1f;
            if (Int("transA", 0) != 0 || Float("alpha") != 1f || Float("beta") != 1f
                || !initializers.TryGetValue(gemm.Input[1], out var b) || b.DataType != (int)DataType.Float || b.Dims.Count != 2)
            {
                continue;
            }

            var weight = b.Name;
            if (Int("transB", 0) != 0)
            {
                weight = $"{b.Name}_transposed";
                transposedFrom.Add(b.Name);
                if (!initializers.ContainsKey(weight))
                {
                    var (n, k) = ((int)b.Dims[0], (int)b.Dims[1]);
                    var values = OnnxTensors.Floats(b);
                    var transposed = new float[values.Length];
                    for (var row = 0; row < n; row++)
                    {
                        for (var column = 0; column < k; column++) transposed[(column * n) + row] = values[(row * k) + column];
                    }

                    var tensor = OnnxTensors.Create(weight, DataType.Float, MemoryMarshal.AsBytes(transposed.AsSpan()), k, n);
                    graph.Initializer.Add(tensor);
                    initializers[weight] = tensor;
                }
            }

            var output = gemm.Output[0];
            replacements[gemm] = gemm.Input.Count == 3 && gemm.Input[2].Length > 0
                ? [OnnxNodes.Create("MatMul", [gemm.Input[0], weight], [$"{output}_matmul"]), OnnxNodes.Create("Add", [$"{output}_matmul", gemm.Input[2]], [output])]
                : [OnnxNodes.Create("MatMul", [gemm.Input[0], weight], [output])];
        }

        Replace(graph, replacements, transposedFrom);
    }

    /// <summary>
    /// Puts each rewritten node's replacements where it stood, so the graph stays in topological order, then drops
    /// the old forms of <paramref name="rewrittenWeights"/> that no node reads any more.
    /// </summary>
    private static void Replace(GraphProto graph, Dictionary<NodeProto, NodeProto[]> replacements, HashSet<string> rewrittenWeights)
    {
        if (replacements.Count > 0)
        {
            var nodes = graph.Node.SelectMany(n => replacements.TryGetValue(n, out var r) ? r : [n]).ToList();
            graph.Node.Clear();
            graph.Node.AddRange(nodes);
        }

        var read = graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var unread in graph.Initializer.Where(t => rewrittenWeights.Contains(t.Name) && !read.Contains(t.Name)).ToList())
        {
            graph.Initializer.Remove(unread);
        }
    }

    /// <summary>Tables with fewer rows (position embeddings) are small and stay float32.</summary>
    private const int MinTableRows = 4096;

    private static (short[] Values, float[] Scales) QuantizePerRow(TensorProto table)
    {
        var (rows, columns) = ((int)table.Dims[0], (int)table.Dims[1]);
        var values = OnnxTensors.Floats(table);
        var scales = new float[rows];
        var quantized = new short[values.Length];
        for (var row = 0; row < rows; row++)
        {
            var source = values.AsSpan(row * columns, columns);
            var max = 0f;
            foreach (var value in source) max = Math.Max(max, Math.Abs(value));
            var scale = max > 0 ? max / short.MaxValue : 1;
            scales[row] = scale;
            for (var n = 0; n < columns; n++)
            {
                quantized[(row * columns) + n] = (short)Math.Clamp(MathF.Round(source[n] / scale), -short.MaxValue, short.MaxValue);
            }
        }

        return (quantized, scales);
    }

    /// <summary>Gather(int16 rows) -> Cast -> Mul by Gather(row scales [V, 1]), which broadcasts over the row.</summary>
    private static NodeProto[] TableLookupNodes(NodeProto gather, string table)
    {
        var prefix = gather.Output[0];
        string indices = gather.Input[1], output = gather.Output[0];
        return
        [
            OnnxNodes.Create("Gather", [$"{table}_quantized", indices], [$"{prefix}_int16"]),
            OnnxNodes.Create("Gather", [$"{table}_row_scale", indices], [$"{prefix}_scale"]),
            OnnxNodes.Cast($"{prefix}_int16", $"{prefix}_unscaled", DataType.Float),
            OnnxNodes.Create("Mul", [$"{prefix}_unscaled", $"{prefix}_scale"], [output]),
        ];
    }

    private static NodeProto[] MatMulIntegerNodes(NodeProto matMul, string weight)
    {
        var prefix = matMul.Output[0];
        string activation = matMul.Input[0], output = matMul.Output[0];
        return
        [
            OnnxNodes.Create("DynamicQuantizeLinear", [activation], [$"{prefix}_a_q", $"{prefix}_a_scale", $"{prefix}_a_zero_point"]),
            OnnxNodes.Create("MatMulInteger", [$"{prefix}_a_q", $"{weight}_quantized", $"{prefix}_a_zero_point", $"{weight}_zero_point"], [$"{prefix}_int32"]),
            OnnxNodes.Cast($"{prefix}_int32", $"{prefix}_unscaled", DataType.Float),
            OnnxNodes.Create("Mul", [$"{prefix}_a_scale", $"{weight}_scale"], [$"{prefix}_scale"]),
            OnnxNodes.Create("Mul", [$"{prefix}_unscaled", $"{prefix}_scale"], [output]),
        ];
    }
}

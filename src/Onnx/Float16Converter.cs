using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

/// <summary>
/// Rewrites a float32 graph to float16 weights and compute while its inputs and outputs stay float32, so callers do not
/// change: float initializers, constants and <c>Cast</c>s to float become float16, values beyond float16's range are
/// clamped to its largest finite value (attention masks use float32's minimum), and a <c>Cast</c> is put after each
/// float input and before each float output. Where ONNX Runtime's CPU provider lacks a float16 kernel it inserts
/// casts itself; the variant exists for GPUs.
/// </summary>
public static class Float16Converter
{
    private static readonly AttributeProto.Types.AttributeType TensorAttribute = AttributeProto.Types.AttributeType.Tensor;

    /// <exception cref="InvalidDataException">The graph has subgraphs, external data, or nothing in float32.</exception>
    public static RewriteReport Convert(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        if (graph.Node.FirstOrDefault(n => n.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0)) is { } control)
        {
            throw new InvalidDataException($"Node {control.Name} ({control.OpType}) has a subgraph, which this version does not convert.");
        }

        long before = 0, after = 0;
        var changed = 0;
        for (var i = 0; i < graph.Initializer.Count; i++)
        {
            if (graph.Initializer[i].DataType == (int)DataType.Float)
            {
                before += graph.Initializer[i].RawData.Length + (graph.Initializer[i].FloatData.Count * sizeof(float));
                graph.Initializer[i] = ToFloat16(graph.Initializer[i]);
                after += graph.Initializer[i].RawData.Length;
                changed++;
            }
        }

        foreach (var node in graph.Node)
        {
            changed += ConvertNode(node);
        }

        foreach (var info in graph.ValueInfo.Where(IsFloat))
        {
            info.Type.TensorType.ElemType = (int)DataType.Float16;
        }

        if (changed == 0)
        {
            throw new InvalidDataException("The graph has no float32 weights or constants: there is nothing to convert to float16.");
        }

        KeepFloatInterface(graph);
        return new RewriteReport(changed, before, after);
    }

    private static int ConvertNode(NodeProto node)
    {
        var changed = 0;
        foreach (var attribute in node.Attribute)
        {
            if (node.OpType == "Cast" && attribute.Name == "to" && attribute.I == (long)DataType.Float)
            {
                attribute.I = (long)DataType.Float16;
                changed++;
            }
            else if (attribute.T is { DataType: (int)DataType.Float } tensor)
            {
                attribute.T = ToFloat16(tensor);
                changed++;
            }
            else if (node.OpType == "Constant" && attribute.Name is "value_float" or "value_floats")
            {
                float[] values = attribute.Name == "value_float" ? [attribute.F] : [.. attribute.Floats];
                var constant = OnnxTensors.Create(string.Empty, DataType.Float, MemoryMarshal.AsBytes(values.AsSpan()), attribute.Name == "value_float" ? [] : [values.Length]);
                attribute.Name = "value";
                attribute.Type = TensorAttribute;
                attribute.F = 0;
                attribute.Floats.Clear();
                attribute.T = ToFloat16(constant);
                changed++;
            }
        }

        return changed;
    }

    private static void KeepFloatInterface(GraphProto graph)
    {
        var initializerNames = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var casts = new List<NodeProto>();
        foreach (var input in graph.Input.Where(i => IsFloat(i) && !initializerNames.Contains(i.Name)))
        {
            var half = input.Name + "_fp16";
            Rename(graph.Node, input.Name, half, inputs: true);
            casts.Add(OnnxNodes.Cast(input.Name, half, DataType.Float16));
        }

        for (var i = casts.Count - 1; i >= 0; i--)
        {
            graph.Node.Insert(0, casts[i]);
        }
        foreach (var output in graph.Output.Where(IsFloat))
        {
            var half = output.Name + "_fp16";
            Rename(graph.Node, output.Name, half, inputs: true);
            Rename(graph.Node, output.Name, half, inputs: false);
            graph.Node.Add(OnnxNodes.Cast(half, output.Name, DataType.Float));
        }
    }

    private static void Rename(IEnumerable<NodeProto> nodes, string from, string to, bool inputs)
    {
        foreach (var node in nodes)
        {
            var names = inputs ? node.Input : node.Output;
            for (var i = 0; i < names.Count; i++)
            {
                if (names[i] == from) names[i] = to;
            }
        }
    }

    private static bool IsFloat(ValueInfoProto info) => info.Type?.TensorType is { ElemType: (int)DataType.Float };

    private static TensorProto ToFloat16(TensorProto tensor)
    {
        var values = OnnxTensors.Floats(tensor);
        var halves = new Half[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            halves[i] = (Half)Math.Clamp(values[i], (float)Half.MinValue, (float)Half.MaxValue);
        }

        var converted = tensor.Clone();
        converted.FloatData.Clear();
        converted.DataType = (int)DataType.Float16;
        converted.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(halves.AsSpan()));
        return converted;
    }
}

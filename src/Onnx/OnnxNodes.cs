using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

/// <summary>Nodes the rewriters put into graphs, named after their first output (unique, as outputs are).</summary>
internal static class OnnxNodes
{
    public static NodeProto Create(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = outputs[0] + "_" + op };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    public static NodeProto Cast(string input, string output, DataType to) =>
        Create("Cast", [input], [output], new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)to });
}

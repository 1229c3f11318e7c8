using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

internal static class OnnxTensors
{
    public static float[] Floats(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw new InvalidDataException($"Tensor {tensor.Name} keeps its data in an external file, which this version does not rewrite.");
        }

        return tensor.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray() : [.. tensor.FloatData];
    }

    public static TensorProto Create(string name, DataType type, ReadOnlySpan<byte> bytes, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }
}

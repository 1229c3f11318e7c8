using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace Onnx;

internal static class OnnxTensors
{
    public static float[] Floats(TensorProto tensor)
    {
        RequireInline(tensor);
        return tensor.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray() : [.. tensor.FloatData];
    }

    /// <summary>An 8-bit tensor's values, from raw data or from int32_data (where ONNX stores small integer types otherwise).</summary>
    public static byte[] Bytes(TensorProto tensor)
    {
        RequireInline(tensor);
        return tensor.RawData.Length > 0 ? tensor.RawData.ToByteArray() : [.. tensor.Int32Data.Select(v => (byte)v)];
    }

    private static void RequireInline(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw new InvalidDataException($"Tensor {tensor.Name} keeps its data in an external file, which this version does not read.");
        }
    }

    public static TensorProto Create(string name, DataType type, ReadOnlySpan<byte> bytes, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }
}

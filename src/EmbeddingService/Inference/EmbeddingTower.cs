using System.Buffers;
using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EmbeddingService.Inference;

/// <summary>
/// One CLIP tower in an ONNX Runtime session. Inputs and outputs are caller-owned buffers handed to the
/// runtime without copies; the embeddings come back L2-normalized.
/// </summary>
public sealed class EmbeddingTower : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly TensorElementType _inputType;
    private readonly TensorElementType _outputType;
    private readonly long[] _itemShape;

    public EmbeddingTower(InferenceSession session, TowerSignature signature, string path)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(signature);
        _session = session;
        _inputType = signature.Check(session, path);
        _outputType = session.OutputMetadata[signature.OutputName].ElementDataType;
        _inputNames = [signature.InputName];
        _outputNames = [signature.OutputName];
        Dimension = signature.EmbeddingDimension;
        _itemShape = [.. signature.InputShape.Skip(1).Select(d => (long)d)];
        ItemLength = (int)_itemShape.Aggregate(1L, (a, b) => a * b);
        var batchDimension = session.InputMetadata[signature.InputName].Dimensions[0];
        MaxBatch = batchDimension > 0 ? batchDimension : int.MaxValue;
    }

    public int Dimension { get; }

    /// <summary>Number of input elements per item: 3*224*224 pixels, or 77 token ids.</summary>
    public int ItemLength { get; }

    /// <summary>The largest batch the model accepts: a model exported with a fixed batch of 1 cannot batch.</summary>
    public int MaxBatch { get; }

    /// <summary>Embeds <paramref name="count"/> items of <paramref name="inputs"/> into <paramref name="destination"/> (count x Dimension).</summary>
    public void Embed(Memory<float> inputs, int count, Memory<float> destination)
    {
        if (_inputType == TensorElementType.Float16)
        {
            var halves = ArrayPool<Half>.Shared.Rent(count * ItemLength);
            try
            {
                TensorPrimitives.ConvertToHalf(inputs.Span[..(count * ItemLength)], halves);
                using var halfInput = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, halves.AsMemory(0, count * ItemLength), Shape(count));
                Run(halfInput, count, destination);
            }
            finally
            {
                ArrayPool<Half>.Shared.Return(halves);
            }

            return;
        }

        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, inputs[..(count * ItemLength)], Shape(count));
        Run(input, count, destination);
    }

    /// <summary>Embeds <paramref name="count"/> rows of token ids.</summary>
    public void Embed(Memory<long> tokenIds, int count, Memory<float> destination)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tokenIds[..(count * ItemLength)], Shape(count));
        Run(input, count, destination);
    }

    public void Dispose() => _session.Dispose();

    private void Run(OrtValue input, int count, Memory<float> destination)
    {
        var length = count * Dimension;
        using var runOptions = new RunOptions();
        if (_outputType == TensorElementType.Float)
        {
            using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, destination[..length], [count, Dimension]);
            _session.Run(runOptions, _inputNames, [input], _outputNames, [output]);
        }
        else
        {
            using var results = _session.Run(runOptions, _inputNames, [input], _outputNames);
            TensorPrimitives.ConvertToSingle(results[0].GetTensorDataAsSpan<Half>()[..length], destination.Span);
        }

        Normalize(destination.Span[..length], Dimension);
    }

    private static void Normalize(Span<float> rows, int dimension)
    {
        for (var offset = 0; offset < rows.Length; offset += dimension)
        {
            var row = rows.Slice(offset, dimension);
            var norm = TensorPrimitives.Norm(row);
            if (norm > 0)
            {
                TensorPrimitives.Divide(row, norm, row);
            }
        }
    }

    private long[] Shape(int count)
    {
        var shape = new long[_itemShape.Length + 1];
        shape[0] = count;
        _itemShape.CopyTo(shape, 1);
        return shape;
    }
}

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
        var dimensions = session.InputMetadata[signature.InputName].Dimensions;
        MaxBatch = dimensions[0] > 0 ? dimensions[0] : int.MaxValue;
        // Hugging Face / Xenova text exports take [batch, sequence_length]; some exports fix it at 77.
        HasDynamicSequence = signature.InputName == TowerSignature.TextInput && dimensions[^1] < 0;
    }

    /// <summary>Whether token ids may be sent at their real length instead of padded to the context.</summary>
    public bool HasDynamicSequence { get; }

    public int Dimension { get; }

    /// <summary>Number of input elements per item: 3*224*224 pixels, or 77 token ids.</summary>
    public int ItemLength { get; }

    /// <summary>The largest batch the model accepts: a model exported with a fixed batch of 1 cannot batch.</summary>
    public int MaxBatch { get; }

    /// <summary>Runs the batching pipeline may make at the same time (ONNX Runtime sessions take concurrent runs).</summary>
    public int Workers { get; init; } = 1;

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

    /// <summary>
    /// Embeds <paramref name="count"/> rows of <see cref="ItemLength"/> token ids, each ending at its first
    /// <c>&lt;|endoftext|&gt;</c>. When the model takes any length, the rows are packed in place to the longest one's
    /// length: with CLIP's causal mask the pooled end-token state depends only on the tokens before it, so the result
    /// is the padded run's, for a fraction of the work on short texts.
    /// </summary>
    public void Embed(Memory<long> tokenIds, int count, Memory<float> destination)
    {
        var length = HasDynamicSequence ? PackToLongest(tokenIds.Span, count, ItemLength) : ItemLength;
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, tokenIds[..(count * length)], [count, length]);
        Run(input, count, destination);
    }

    /// <summary>Moves row i from offset i x <paramref name="rowLength"/> to i x L, L the longest row up to its end token.</summary>
    internal static int PackToLongest(Span<long> rows, int count, int rowLength)
    {
        var length = 1;
        for (var i = 0; i < count; i++)
        {
            var end = rows.Slice(i * rowLength, rowLength).IndexOf(Tokenization.ClipTokenizer.EndOfText);
            length = Math.Max(length, end < 0 ? rowLength : end + 1);
        }

        for (var i = 1; i < count; i++)
        {
            rows.Slice(i * rowLength, length).CopyTo(rows.Slice(i * length, length));
        }

        return length;
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

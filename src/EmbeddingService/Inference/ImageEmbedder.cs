using System.Buffers;
using EmbeddingService.Hosting;
using EmbeddingService.Imaging;
using EmbeddingService.Model;

namespace EmbeddingService.Inference;

/// <summary>Encoded image in, L2-normalized embedding out: decode, CLIP preprocessing, vision tower.</summary>
public sealed class ImageEmbedder(ModelState state, ImageDecoder decoder)
{
    private ClipImagePreprocessor? _preprocessor;

    /// <exception cref="ImageRejectedException">The bytes are not a usable image.</exception>
    /// <exception cref="ModelNotReadyException">The model has not loaded (yet).</exception>
    public Task<float[]> EmbedAsync(ReadOnlyMemory<byte> encoded, CancellationToken cancellationToken)
    {
        var model = state.Model ?? throw new ModelNotReadyException(state.Status, state.Error);
        var preprocessor = _preprocessor ??= new ClipImagePreprocessor(model.Preprocessor);
        var pixels = ArrayPool<float>.Shared.Rent(preprocessor.OutputLength);
        try
        {
            using (var image = decoder.Decode(encoded.Span, model.Preprocessor.ShortestEdge))
            {
                preprocessor.Preprocess(image, pixels);
            }

            cancellationToken.ThrowIfCancellationRequested();
            var embedding = new float[model.Vision.Dimension];
            model.Vision.Embed(pixels, 1, embedding);
            return Task.FromResult(embedding);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(pixels);
        }
    }
}

/// <summary>The model is still loading, or failed to load.</summary>
public sealed class ModelNotReadyException : Exception
{
    public ModelNotReadyException()
    {
    }

    public ModelNotReadyException(string message)
        : base(message)
    {
    }

    public ModelNotReadyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ModelNotReadyException(ModelStatus status, string? error)
        : base(status == ModelStatus.Failed ? $"The model failed to load: {error}" : "The model is still loading; retry shortly.")
    {
    }
}

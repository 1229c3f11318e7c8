using System.Buffers;
using System.Diagnostics;
using EmbeddingService.Hosting;
using EmbeddingService.Imaging;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Inference;

/// <summary>
/// Encoded image in, L2-normalized embedding out. A request takes its place in the vision pipeline before
/// its upload is even read (so a full service refuses it for the price of its headers), decodes and
/// preprocesses under a bound on concurrent decodes, then waits for the batch it joins.
/// </summary>
public sealed class ImageEmbedder(ModelState state, ImageDecoder decoder, IOptions<BatchingOptions> options) : IDisposable
{
    private readonly SemaphoreSlim _decodes = new(options.Value.EffectiveConcurrentDecodes);

    /// <summary>Reserves a place for one image; dispose it when the request ends.</summary>
    /// <exception cref="ModelNotReadyException">The model has not loaded (yet).</exception>
    /// <exception cref="QueueFullException">The pipeline is full.</exception>
    public Reservation Reserve()
    {
        var serving = state.Serving ?? throw new ModelNotReadyException(state.Status, state.Error);
        return new Reservation(this, serving, serving.Vision.Admit());
    }

    public void Dispose() => _decodes.Dispose();

    /// <summary>Decodes and preprocesses into <paramref name="pixels"/> under the bound on concurrent decodes; returns the time it took.</summary>
    private async Task<TimeSpan> PreprocessAsync(ServingModel serving, ReadOnlyMemory<byte> encoded, float[] pixels, CancellationToken cancellationToken)
    {
        await _decodes.WaitAsync(cancellationToken);
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var image = decoder.Decode(encoded.Span, serving.Model.Preprocessor.ShortestEdge);
            serving.ImagePreprocessor.Preprocess(image, pixels);
            return Stopwatch.GetElapsedTime(started);
        }
        finally
        {
            _decodes.Release();
        }
    }

    /// <summary>A place in the vision pipeline, from before the upload is read until its embedding is out.</summary>
    public sealed class Reservation(ImageEmbedder embedder, ServingModel serving, BatchingPipeline<float>.Ticket ticket) : IDisposable
    {
        /// <exception cref="ImageRejectedException">The bytes are not a usable image.</exception>
        public async Task<ImageEmbedding> EmbedAsync(ReadOnlyMemory<byte> encoded, CancellationToken cancellationToken)
        {
            var pipeline = serving.Vision;
            var pixels = ArrayPool<float>.Shared.Rent(pipeline.ItemLength);
            try
            {
                var decoded = await embedder.PreprocessAsync(serving, encoded, pixels, cancellationToken);
                var result = await pipeline.EmbedAsync(ticket, pixels.AsMemory(0, pipeline.ItemLength), cancellationToken);
                return new ImageEmbedding(result.Embedding, serving.Model.Device, decoded, result);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(pixels);
            }
        }

        public void Dispose() => ticket.Dispose();
    }
}

/// <summary>An image's embedding with where its time went.</summary>
public sealed record ImageEmbedding(float[] Vector, string Device, TimeSpan Decode, BatchResult Batch);

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

using System.Buffers;
using System.Diagnostics;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Errors;
using EmbeddingService.Imaging;
using EmbeddingService.Telemetry;
using EmbeddingService.Limits;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Inference;

/// <summary>
/// Encoded image in, L2-normalized embedding out. A request is refused from its headers when the service is
/// full, takes its place in the vision pipeline only once its upload is in (a slow upload holds no place),
/// decodes within a budget of pixels in flight and a bound on concurrent decodes, then waits for its batch.
/// </summary>
public sealed class ImageEmbedder(ModelState state, ImageDecoder decoder, IOptions<BatchingOptions> batching, IOptions<ImagingOptions> imaging,
    ServiceMetrics metrics) : IDisposable
{
    private readonly SemaphoreSlim _decodes = new(batching.Value.EffectiveConcurrentDecodes);
    private readonly ResourceBudget _pixels = new(imaging.Value.MaxDecodeBytes);

    /// <summary>Refuses what would be refused anyway, before the upload is read: the price of a refusal stays that of the headers.</summary>
    /// <exception cref="ModelNotReadyException">The model has not loaded (yet).</exception>
    /// <exception cref="QueueFullException">The pipeline is full.</exception>
    public void EnsureAccepting()
    {
        var serving = state.Serving ?? throw new ModelNotReadyException(state.Status, state.Error);
        if (serving.Vision.IsFull)
        {
            throw new QueueFullException();
        }
    }

    /// <exception cref="ImageRejectedException">The bytes are not a usable image.</exception>
    /// <exception cref="ModelNotReadyException">The model has not loaded (yet).</exception>
    /// <exception cref="QueueFullException">The pipeline is full, or decoding memory stayed taken too long.</exception>
    public Task<ImageEmbedding> EmbedAsync(ReadOnlyMemory<byte> encoded, CancellationToken cancellationToken) => EmbedAsync(encoded, withThumbnail: false, cancellationToken);

    /// <param name="withThumbnail">Also make a small JPEG preview from the same decode (for the vector store).</param>
    public async Task<ImageEmbedding> EmbedAsync(ReadOnlyMemory<byte> encoded, bool withThumbnail, CancellationToken cancellationToken)
    {
        var serving = state.Serving ?? throw new ModelNotReadyException(state.Status, state.Error);
        var plan = decoder.Probe(encoded, serving.Model.Preprocessor.ShortestEdge);
        using var ticket = serving.Vision.Admit();
        return await EmbedAdmittedAsync(serving, ticket, encoded, plan, withThumbnail, cancellationToken);
    }

    /// <summary>
    /// Embeds several images, in order, all or none: every header is read before anything is decoded, and a batch
    /// with any image that cannot be used is refused whole, naming each one.
    /// </summary>
    /// <exception cref="BatchRejectedException">Some images are not usable; the others were not (or not all) embedded.</exception>
    public async Task<IReadOnlyList<ImageEmbedding>> EmbedManyAsync(IReadOnlyList<ReadOnlyMemory<byte>> images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        var serving = state.Serving ?? throw new ModelNotReadyException(state.Status, state.Error);
        var rejected = new List<(int, ImageRejectedException)>();
        var plans = new DecodePlan[images.Count];
        for (var i = 0; i < images.Count; i++)
        {
            try
            {
                plans[i] = decoder.Probe(images[i], serving.Model.Preprocessor.ShortestEdge);
            }
            catch (ImageRejectedException e)
            {
                rejected.Add((i, e));
            }
        }

        if (rejected.Count > 0)
        {
            throw new BatchRejectedException(rejected, images.Count);
        }

        var tickets = serving.Vision.Admit(images.Count);
        try
        {
            var runs = new Task<ImageEmbedding>[images.Count];
            for (var i = 0; i < runs.Length; i++)
            {
                runs[i] = EmbedAdmittedAsync(serving, tickets[i], images[i], plans[i], withThumbnail: false, cancellationToken);
            }

            try
            {
                return await Task.WhenAll(runs);
            }
            catch (ImageRejectedException)
            {
                // A header that read well but a body that did not decode: name every such image.
                throw new BatchRejectedException([.. runs.Select((run, i) => (i, run.Exception?.InnerException as ImageRejectedException))
                    .Where(r => r.Item2 is not null).Select(r => (r.i, r.Item2!))], images.Count);
            }
        }
        finally
        {
            foreach (var ticket in tickets) ticket.Dispose();
        }
    }

    private async Task<ImageEmbedding> EmbedAdmittedAsync(ServingModel serving, BatchingPipeline<float>.Ticket ticket, ReadOnlyMemory<byte> encoded,
        DecodePlan plan, bool withThumbnail, CancellationToken cancellationToken)
    {
        var pipeline = serving.Vision;
        var pixels = ArrayPool<float>.Shared.Rent(pipeline.ItemLength);
        try
        {
            var (decoded, preprocessed, thumbnail) = await PreprocessAsync(serving, encoded, plan, pixels, withThumbnail, cancellationToken);
            var result = await pipeline.EmbedAsync(ticket, pixels.AsMemory(0, pipeline.ItemLength), cancellationToken);
            return new ImageEmbedding(result.Embedding, serving.Model.Card.Name, serving.Model.Device, decoded, result)
            {
                Preprocess = preprocessed,
                Thumbnail = thumbnail,
                Pixels = (long)plan.Width * plan.Height,
            };
        }
        finally
        {
            ArrayPool<float>.Shared.Return(pixels);
        }
    }

    public void Dispose() => _decodes.Dispose();

    /// <summary>Decodes and preprocesses into <paramref name="pixels"/> within the decode bounds; returns the time it took.</summary>
    /// <param name="plan">The header's reading (<see cref="ImageDecoder.Probe"/>), made once by the caller.</param>
    private async Task<(TimeSpan Decode, TimeSpan Preprocess, byte[]? Thumbnail)> PreprocessAsync(ServingModel serving, ReadOnlyMemory<byte> encoded, DecodePlan plan, float[] pixels,
        bool withThumbnail, CancellationToken cancellationToken)
    {
        var shortestEdge = serving.Model.Preprocessor.ShortestEdge;
        using var memory = await ReservePixelsAsync(plan, cancellationToken);
        await _decodes.WaitAsync(cancellationToken);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var image = decoder.DecodeStored(encoded, shortestEdge, out var orientation);
            try
            {
                if (imaging.Value.ExifOrientation == ExifOrientationMode.Apply) image = ExifOrientation.Apply(image, orientation);
                var decoded = Stopwatch.GetElapsedTime(started);
                serving.ImagePreprocessor.Preprocess(image, pixels);
                var elapsed = Stopwatch.GetElapsedTime(started);
                metrics.Decoded(plan.Format, elapsed);
                // Thumbnails are for people: upright whatever was embedded.
                if (withThumbnail && imaging.Value.ExifOrientation == ExifOrientationMode.Ignore) image = ExifOrientation.Apply(image, orientation);
                return (decoded, elapsed - decoded, withThumbnail ? ThumbnailMaker.Make(image) : null);
            }
            finally
            {
                image.Dispose();
            }
        }
        finally
        {
            _decodes.Release();
        }
    }

    private async Task<ResourceBudget.Lease> ReservePixelsAsync(DecodePlan plan, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(imaging.Value.DecodeWaitTimeoutSeconds));
        try
        {
            return await _pixels.AcquireAsync(plan.WorkingBytes, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new QueueFullException(
                $"The service is decoding {imaging.Value.MaxDecodeMegapixels} megapixels of other images (MAX_DECODE_MEGAPIXELS); retry shortly.");
        }
    }
}

/// <summary>An image's embedding with where its time went.</summary>
/// <param name="Model">The model's name, as answers carry it (<see cref="Model.ModelCard.Name"/>).</param>
public sealed record ImageEmbedding(float[] Vector, string Model, string Device, TimeSpan Decode, BatchResult Batch)
{
    /// <summary>Resizing, cropping and normalizing the decoded image (Decode is the decode and EXIF orientation alone).</summary>
    public TimeSpan Preprocess { get; init; }

    /// <summary>A small JPEG preview, when asked for.</summary>
    public byte[]? Thumbnail { get; init; }

    /// <summary>The image's width x height, as its header gave them.</summary>
    public long Pixels { get; init; }
}

/// <summary>Some images of a batch cannot be used: each with its index in the request and the reason (<see cref="ApiError.Batch"/>).</summary>
public sealed class BatchRejectedException : ApiException
{
    public BatchRejectedException()
    {
    }

    public BatchRejectedException(string message)
        : base(message)
    {
    }

    public BatchRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public BatchRejectedException(IReadOnlyList<(int Index, ImageRejectedException Reason)> rejected, int parts)
        : base(ApiError.Batch(rejected, parts, i => $"image {i}")) => (Rejected, Parts) = (rejected, parts);

    public IReadOnlyList<(int Index, ImageRejectedException Reason)> Rejected { get; } = [];

    /// <summary>Images in the batch.</summary>
    public int Parts { get; }
}

/// <summary>The model is still loading, or failed to load.</summary>
public sealed class ModelNotReadyException : ApiException
{
    public ModelNotReadyException()
        : this("The model is still loading; retry shortly.")
    {
    }

    public ModelNotReadyException(string message)
        : base(new ApiError(ErrorKind.NotReady, message, "model_not_ready"))
    {
    }

    public ModelNotReadyException(string message, Exception innerException)
        : base(new ApiError(ErrorKind.NotReady, message, "model_not_ready"), innerException)
    {
    }

    public ModelNotReadyException(ModelStatus status, string? error)
        : this(status == ModelStatus.Failed ? $"The model failed to load: {error}" : "The model is still loading; retry shortly.")
    {
    }
}

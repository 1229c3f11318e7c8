using System.ComponentModel.DataAnnotations;
using EmbeddingService.Model;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Inference;

/// <summary>How requests are batched into inference runs; defaults measured on 2 cores (docs/decisions.md).</summary>
public sealed class BatchingOptions
{
    /// <summary>Most items in one inference run; unset, 8, but 4 for images with int8 (<see cref="ForImages"/>).</summary>
    [ConfigurationKeyName("MAX_BATCH_SIZE")]
    [Range(1, 256)]
    public int? MaxBatchSize { get; set; }

    /// <summary>
    /// Longest wait for more items, while admitted requests are still being decoded or fewer have come than
    /// the last run suggests are on their way.
    /// </summary>
    [ConfigurationKeyName("BATCH_TIMEOUT_MS")]
    [Range(0, 1000)]
    public int BatchTimeoutMs { get; set; } = 50;

    /// <summary>Requests admitted but not yet running (decoding or queued); beyond it, 503 at once.</summary>
    [ConfigurationKeyName("MAX_QUEUE_DEPTH")]
    [Range(1, 100_000)]
    public int MaxQueueDepth { get; set; } = 64;

    /// <summary>Images decoded at the same time; 0 means one per core.</summary>
    [ConfigurationKeyName("MAX_CONCURRENT_DECODES")]
    [Range(0, 256)]
    public int MaxConcurrentDecodes { get; set; }

    public int EffectiveMaxBatchSize => MaxBatchSize ?? 8;

    /// <summary>
    /// These options for the image pipeline of a variant: when no batch size is set, int8 gets 4, so that 8 clients
    /// make two batches that run side by side on its one-thread workers (batch 8: 1.65x fp32 against 2.63x;
    /// docs/decisions.md). Texts have no decoding to overlap and keep 8.
    /// </summary>
    public BatchingOptions ForImages(ModelVariant variant)
    {
        var images = (BatchingOptions)MemberwiseClone();
        images.MaxBatchSize ??= variant == ModelVariant.Quantized ? 4 : 8;
        return images;
    }

    public int EffectiveConcurrentDecodes => MaxConcurrentDecodes > 0 ? MaxConcurrentDecodes : Environment.ProcessorCount;
}

using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Inference;

/// <summary>How requests are batched into inference runs; defaults measured on 2 cores (docs/decisions.md).</summary>
public sealed class BatchingOptions
{
    /// <summary>Most items in one inference run.</summary>
    [ConfigurationKeyName("MAX_BATCH_SIZE")]
    [Range(1, 256)]
    public int MaxBatchSize { get; set; } = 8;

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

    public int EffectiveConcurrentDecodes => MaxConcurrentDecodes > 0 ? MaxConcurrentDecodes : Environment.ProcessorCount;
}

using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Uploads;

/// <summary>How request bodies are received: sizes, time, and how many at once. Defaults in docs/decisions.md.</summary>
public sealed class UploadOptions : IValidatableObject
{
    /// <summary>Largest accepted file; larger ones get 413 after one byte past the limit.</summary>
    [ConfigurationKeyName("MAX_UPLOAD_BYTES")]
    [Range(1, 1L << 30)]
    public long MaxUploadBytes { get; set; } = 20 * 1024 * 1024;

    /// <summary>Bodies being received at once; past it, 503 at once (an upload holds no pipeline place while it arrives).</summary>
    [ConfigurationKeyName("MAX_CONCURRENT_UPLOADS")]
    [Range(1, 100_000)]
    public int MaxConcurrentUploads { get; set; } = 128;

    /// <summary>Memory all upload buffers together may hold; an upload that does not fit waits (within its deadline).</summary>
    [ConfigurationKeyName("MAX_UPLOAD_MEMORY_MB")]
    [Range(1, 1 << 20)]
    public int MaxUploadMemoryMB { get; set; } = 256;

    /// <summary>Time for a whole body to arrive; a slower one gets 408.</summary>
    [ConfigurationKeyName("UPLOAD_TIMEOUT_S")]
    [Range(1, 3600)]
    public int UploadTimeoutSeconds { get; set; } = 30;

    /// <summary>Least bytes per second a body must arrive at, after a 5 s grace period; a slower one gets 408.</summary>
    [ConfigurationKeyName("UPLOAD_MIN_BYTES_PER_S")]
    [Range(0, 1L << 30)]
    public long UploadMinBytesPerSecond { get; set; } = 1024;

    public long MaxUploadMemoryBytes => (long)MaxUploadMemoryMB << 20;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        // A growing buffer briefly holds its old and its new array.
        if (MaxUploadMemoryBytes < 2 * MaxUploadBytes)
        {
            yield return new ValidationResult(
                $"MAX_UPLOAD_MEMORY_MB ({MaxUploadMemoryMB}) must be at least twice MAX_UPLOAD_BYTES ({MaxUploadBytes:N0} bytes).",
                [nameof(MaxUploadMemoryMB)]);
        }
    }
}

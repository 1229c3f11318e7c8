using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Api;

/// <summary>How much one request may ask for.</summary>
public sealed class RequestLimits
{
    /// <summary>Texts or images in one request.</summary>
    [ConfigurationKeyName("MAX_BATCH_ITEMS")]
    [Range(1, 4096)]
    public int MaxBatchItems { get; set; } = 64;

    /// <summary>Characters in one text (CLIP reads 77 tokens of it; the rest is cut, as CLIP's truncate=True).</summary>
    [ConfigurationKeyName("MAX_TEXT_CHARS")]
    [Range(1, 1_000_000)]
    public int MaxTextChars { get; set; } = 10_000;

    /// <summary>Whole body of a request carrying several images (multipart, or data URIs in JSON).</summary>
    [ConfigurationKeyName("MAX_BATCH_UPLOAD_BYTES")]
    [Range(1, 1L << 31)]
    public long MaxBatchUploadBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>JSON with texts only: every text at its limit, each character escaped (\uXXXX), plus framing.</summary>
    public long MaxTextBodyBytes => ((long)MaxBatchItems * MaxTextChars * 6) + (64 * 1024);
}

using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Classification;

/// <summary>Zero-shot tags: how similarities become scores, and how many label embeddings are kept.</summary>
public sealed class ClassificationOptions
{
    /// <summary>
    /// Scores are softmax(LOGIT_SCALE x cosine) over the labels: 100 is CLIP's trained scale (exp of its learned
    /// logit_scale, clamped at 100); the exported towers do not carry it, so it is a setting.
    /// </summary>
    [ConfigurationKeyName("LOGIT_SCALE")]
    [Range(0.001, 1000)]
    public double LogitScale { get; set; } = 100;

    /// <summary>Label embeddings kept (by model, template set and label): a label set is embedded once, then read.</summary>
    [ConfigurationKeyName("LABEL_CACHE_ENTRIES")]
    [Range(0, 10_000_000)]
    public int LabelCacheEntries { get; set; } = 20_000;
}

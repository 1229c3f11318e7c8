using System.Numerics.Tensors;

namespace EmbeddingService.Classification;

/// <summary>A label's place for one subject: its cosine similarity and its share of softmax(scale x similarity).</summary>
public sealed record LabelScore(string Label, double Score, double Similarity);

/// <summary>
/// Zero-shot classification as CLIP does it (and clip-as-service's /rank, open_clip's classifiers): each label's text
/// embedding against the subject's, the similarities scaled by the logit scale and softmaxed over the labels.
/// </summary>
public static class ZeroShot
{
    /// <summary>The default prompt set for product photos (docs/decisions.md, "Zero-shot tags").</summary>
    public static readonly IReadOnlyList<string> ProductTemplates =
    [
        "a photo of a {}.",
        "a product photo of a {}.",
        "a close-up photo of a {}.",
        "a photo of a {} on a white background.",
        "an e-commerce photo of a {}.",
    ];

    /// <summary>Every label scored, best first; <paramref name="labels"/> are unit vectors (<see cref="LabelEmbeddings"/>).</summary>
    public static IReadOnlyList<LabelScore> Rank(ReadOnlySpan<float> subject, IReadOnlyList<string> names, IReadOnlyList<float[]> labels, double logitScale)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(labels);
        var similarities = new double[labels.Count];
        var norm = TensorPrimitives.Norm(subject);
        for (var i = 0; i < labels.Count; i++) similarities[i] = TensorPrimitives.Dot(subject, labels[i]) / norm;
        var scores = Softmax(similarities, logitScale);
        return [.. Enumerable.Range(0, labels.Count).Select(i => new LabelScore(names[i], scores[i], similarities[i])).OrderByDescending(s => s.Score).ThenBy(s => s.Label, StringComparer.Ordinal)];
    }

    /// <summary>softmax(scale x similarity), from the largest term down so that no exp overflows.</summary>
    public static double[] Softmax(ReadOnlySpan<double> similarities, double logitScale)
    {
        var max = double.NegativeInfinity;
        foreach (var s in similarities) max = Math.Max(max, s);
        var scores = new double[similarities.Length];
        var sum = 0.0;
        for (var i = 0; i < scores.Length; i++) sum += scores[i] = Math.Exp(logitScale * (similarities[i] - max));
        for (var i = 0; i < scores.Length; i++) scores[i] /= sum;
        return scores;
    }

    /// <summary>The best label for each of many subjects at once (the tag command): index and score, from a label matrix.</summary>
    public static (int Label, double Score) Best(ReadOnlySpan<float> subject, float[][] labels, double logitScale, Span<double> similarities)
    {
        var norm = TensorPrimitives.Norm(subject);
        var best = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            similarities[i] = TensorPrimitives.Dot(subject, labels[i]) / norm;
            if (similarities[i] > similarities[best]) best = i;
        }

        // The best label's softmax share: 1 / sum(exp(scale x (s_i - s_best))).
        var sum = 0.0;
        for (var i = 0; i < labels.Length; i++) sum += Math.Exp(logitScale * (similarities[i] - similarities[best]));
        return (best, 1 / sum);
    }
}

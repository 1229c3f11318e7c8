using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text;
using EmbeddingService.Inference;
using EmbeddingService.ModelLifecycle;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Classification;

/// <summary>
/// Label embeddings as open_clip's zero-shot classifiers build them: each template filled with the label, embedded,
/// normalized, averaged, normalized again. Kept (bounded: LABEL_CACHE_ENTRIES) by model, template set and label, so a
/// label set is embedded once; the texts of the labels not kept go to the text tower in batches of its queue's depth.
/// </summary>
public sealed class LabelEmbeddings(TextEmbedder texts, ModelState state, IOptions<ClassificationOptions> options, IOptions<BatchingOptions> batching,
    IOptions<Model.ModelOptions> modelOptions) : IDisposable
{
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = Math.Max(1, options.Value.LabelCacheEntries) });

    public async Task<float[][]> EmbedAsync(IReadOnlyList<string> labels, IReadOnlyList<string> templates, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(templates);
        var model = state.Serving?.Model ?? throw new ModelNotReadyException(state.Status, state.Error);
        var set = $"{model.Card.Name}/{modelOptions.Value.Variant}/{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u0001', templates))))[..16]}/";
        var vectors = new float[labels.Count][];
        var missing = new List<int>();
        for (var i = 0; i < labels.Count; i++)
        {
            if (_cache.TryGetValue(set + labels[i], out float[]? kept)) vectors[i] = kept!;
            else missing.Add(i);
        }

        var prompts = missing.SelectMany(i => templates.Select(t => t.Replace("{}", labels[i], StringComparison.Ordinal))).ToList();
        var embedded = new List<float[]>(prompts.Count);
        foreach (var chunk in prompts.Chunk(Math.Max(1, batching.Value.MaxQueueDepth / 2)))
        {
            embedded.AddRange((await texts.EmbedAsync(chunk, cancellationToken)).Vectors);
        }

        for (var m = 0; m < missing.Count; m++)
        {
            var mean = new float[embedded[0].Length];
            for (var t = 0; t < templates.Count; t++) TensorPrimitives.Add(mean, embedded[(m * templates.Count) + t], mean);
            TensorPrimitives.Divide(mean, TensorPrimitives.Norm(mean), mean);
            vectors[missing[m]] = mean;
            if (options.Value.LabelCacheEntries > 0) _cache.Set(set + labels[missing[m]], mean, new MemoryCacheEntryOptions { Size = 1 });
        }

        return vectors;
    }

    public void Dispose() => _cache.Dispose();
}

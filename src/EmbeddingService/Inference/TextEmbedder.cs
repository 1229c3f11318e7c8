using EmbeddingService.ModelLifecycle;

namespace EmbeddingService.Inference;

/// <summary>Texts in, L2-normalized embeddings out, in order, through the text tower's batching pipeline.</summary>
public sealed class TextEmbedder(ModelState state)
{
    /// <summary>Refuses from the headers alone when the model is not ready, the text tower absent, or its queue full.</summary>
    public void EnsureAccepting()
    {
        var serving = state.Serving ?? throw new ModelNotReadyException(state.Status, state.Error);
        if (serving.Text.IsFull)
        {
            throw new QueueFullException();
        }
    }

    /// <summary>Embeds every text (all admitted together, or none); returns the vectors and the tokens read.</summary>
    /// <exception cref="ModelNotReadyException">The model has not loaded (yet).</exception>
    /// <exception cref="QueueFullException">The text pipeline has no room for all of them.</exception>
    /// <exception cref="Model.TowerNotLoadedException">MODEL_TOWERS left the text tower out.</exception>
    public async Task<TextEmbeddings> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var serving = state.Serving ?? throw new ModelNotReadyException(state.Status, state.Error);
        var pipeline = serving.Text;
        var tokenizer = serving.Model.Tokenizer;
        var length = pipeline.ItemLength;
        var ids = new long[texts.Count * length];
        var tokens = 0;
        for (var i = 0; i < texts.Count; i++)
        {
            tokens += tokenizer.Encode(texts[i], ids.AsSpan(i * length, length));
        }

        var tickets = pipeline.Admit(texts.Count);
        try
        {
            var runs = new Task<BatchResult>[texts.Count];
            for (var i = 0; i < runs.Length; i++)
            {
                runs[i] = pipeline.EmbedAsync(tickets[i], ids.AsMemory(i * length, length), cancellationToken);
            }

            var results = await Task.WhenAll(runs);
            return new TextEmbeddings([.. results.Select(r => r.Embedding)], tokens, serving.Model.Card.Name, serving.Model.Device);
        }
        finally
        {
            foreach (var ticket in tickets) ticket.Dispose();
        }
    }
}

/// <summary>Embeddings of several texts, in order, with the tokens their model read.</summary>
/// <param name="Model">The model's name, as answers carry it (<see cref="Model.ModelCard.Name"/>).</param>
public sealed record TextEmbeddings(float[][] Vectors, int Tokens, string Model, string Device);

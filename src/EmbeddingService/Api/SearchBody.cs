using System.Globalization;
using System.Text.Json;
using EmbeddingService.Errors;
using EmbeddingService.Inference;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;

namespace EmbeddingService.Api;

/// <summary>
/// The body of <c>POST /search</c>: multipart <c>file</c> (a photo, with <c>k</c>, <c>filter</c>, <c>min_score</c> as
/// form fields; the vision pipeline is asked for room first), or JSON with exactly one of <c>"text"</c>,
/// <c>"vector"</c>, <c>"item_id"</c> and the same options. Only a photo or a text needs the model.
/// </summary>
public sealed class SearchBody : Intake
{
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField, TextFields: ["k", "filter", "min_score"]);
    private static readonly string[] QueryKinds = ["text", "vector", "item_id"];
    private ReceivedForm? _form;
    private string? _text;
    private float[]? _vector;
    private string? _itemId;
    private int _k = 10;
    private string? _filter;
    private double? _minScore;

    public static ValueTask<SearchBody> BindAsync(HttpContext context) => TakeAsync<SearchBody>(context, async (self, c) =>
    {
        // Not now comes first: without the database, the body is not worth reading.
        var dimension = c.RequestServices.GetRequiredService<StorageState>().Require().Identity.Dimension;
        if (c.Request.HasJsonContentType())
        {
            await ReadJsonAsync(c, Limits(c).MaxTextBodyBytes, root => self.ReadJson(root, Limits(c), dimension));
            if (self._text is not null) c.RequestServices.GetRequiredService<TextEmbedder>().EnsureAccepting();
            return;
        }

        self.Held = self._form = await ReceiveImagesAsync(c, Form);
        self.ReadOptions(self._form.Fields.GetValueOrDefault("k"), self._form.Fields.GetValueOrDefault("filter"), self._form.Fields.GetValueOrDefault("min_score"));
    });

    /// <summary>The query's vector (the photo or text embedded, or the item's own) with the options.</summary>
    public async Task<SearchQuery> ToQueryAsync(IVectorStore store, ImageEmbedder images, TextEmbedder texts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(texts);
        var vector = _vector
            ?? (_text is not null ? (await texts.EmbedAsync([_text], cancellationToken)).Vectors[0] : null)
            ?? (_itemId is not null ? ((await store.GetAsync(_itemId, withEmbedding: true, cancellationToken))?.Embedding ?? throw ItemsEndpoints.NotFound(_itemId).Exception()) : null)
            ?? (await images.EmbedAsync(_form!.Files[0].Content, cancellationToken)).Vector;
        return new SearchQuery(vector, _k, _filter, _minScore, _itemId);
    }

    private void ReadJson(JsonElement root, RequestLimits limits, int dimension)
    {
        if (root.ValueKind != JsonValueKind.Object) throw JsonInput.Invalid("The body must be a JSON object with one of \"text\", \"vector\" or \"item_id\".");
        var kinds = QueryKinds.Where(name => root.TryGetProperty(name, out _)).ToList();
        if (kinds.Count != 1)
        {
            throw JsonInput.Invalid(kinds.Count == 0
                ? "The body needs one query: \"text\", \"vector\" or \"item_id\" (or send a photo as multipart 'file')."
                : $"Send exactly one query, not {string.Join(" and ", kinds.Select(k => $"\"{k}\""))}.");
        }

        ReadOptions(Raw(root, "k"), Raw(root, "filter"), Raw(root, "min_score"));
        var query = root.GetProperty(kinds[0]);
        switch (kinds[0])
        {
            case "text": _text = JsonInput.Text(query, "text", limits); break;
            case "vector": _vector = JsonInput.Vector(query, "vector", dimension); break;
            default: _itemId = ItemsEndpoints.CheckId(JsonInput.String(query, "item_id")); break;
        }

        static string? Raw(JsonElement root, string name) => root.TryGetProperty(name, out var value) ? value.GetRawText() : null;
    }

    /// <summary>k (1-100, default 10), filter (a JSON object, or a JSON string holding one) and min_score (-1 to 1), from JSON text.</summary>
    private void ReadOptions(string? k, string? filter, string? minScore)
    {
        if (k is not null && (!int.TryParse(k.Trim('"', ' '), NumberStyles.Integer, CultureInfo.InvariantCulture, out _k) || _k is < 1 or > 100))
        {
            throw JsonInput.Invalid("k must be a whole number from 1 to 100.", "k");
        }

        if (minScore is not null)
        {
            if (!double.TryParse(minScore.Trim('"', ' '), NumberStyles.Float, CultureInfo.InvariantCulture, out var min) || min is < -1 or > 1 || double.IsNaN(min))
            {
                throw JsonInput.Invalid("min_score must be a number from -1 to 1 (cosine similarity).", "min_score");
            }

            _minScore = min;
        }

        _filter = filter is null or "null" ? null : JsonInput.ObjectText(filter, "filter", "{\"category\": \"bags\"}");
    }
}

using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using EmbeddingService.Errors;
using EmbeddingService.Inference;
using EmbeddingService.Limits;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>
/// The body of <c>POST /search</c>. JSON: one query, <c>"text"</c>, <c>"vector"</c>, <c>"item_id"</c>, or
/// <c>"query"</c>, a list of weighted terms (texts, items, vectors, images as data URIs) whose vector is
/// normalize(sum of weight x normalized term vector); with <c>k</c>, <c>filter</c>, <c>min_score</c>, <c>mode</c>
/// (vector, keyword, hybrid), <c>group_by</c> and <c>group_size</c>. Multipart: a photo (<c>file</c>) with the same
/// options as form fields, and <c>text</c> / <c>text_weight</c> to refine it with words. Only what must be embedded
/// asks for the model, and only its own tower.
/// </summary>
public sealed class SearchBody : Intake
{
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField,
        TextFields: ["k", "filter", "min_score", "mode", "group_by", "group_size", "text", "text_weight"]);

    private static readonly string[] QueryKinds = ["text", "vector", "item_id", "query"];
    private static readonly string[] TermKinds = ["text", "item_id", "vector", "image"];

    private readonly List<Term> _terms = [];
    private int _k = 10;
    private string? _filter;
    private double? _minScore;
    private SearchMode _mode;
    private int? _groupSize;

    public static ValueTask<SearchBody> BindAsync(HttpContext context) => TakeAsync<SearchBody>(context, async (self, c) =>
    {
        // Not now comes first: without the database, the body is not worth reading.
        var dimension = c.RequestServices.GetRequiredService<StorageState>().Require().Identity.Dimension;
        var limits = Limits(c);
        if (c.Request.HasJsonContentType())
        {
            var maxImageBytes = c.RequestServices.GetRequiredService<IOptions<UploadOptions>>().Value.MaxUploadBytes;
            self.Held = new TermImages(self._terms);
            await ReadJsonAsync(c, (limits.MaxBatchUploadBytes * 4 / 3) + limits.MaxTextBodyBytes, root => self.ReadJson(root, limits, dimension, maxImageBytes));
        }
        else
        {
            var form = await ReceiveImagesAsync(c, Form);
            self.Held = form;
            self.ReadForm(form, limits);
        }

        // Each tower is asked for room only when a term needs it (a keyword search needs neither).
        if (self._mode != SearchMode.Keyword && self._terms.Any(t => t.Text is not null)) c.RequestServices.GetRequiredService<TextEmbedder>().EnsureAccepting();
        if (self._mode != SearchMode.Keyword && self._terms.Any(t => t.Image is not null)) c.RequestServices.GetRequiredService<ImageEmbedder>().EnsureAccepting();
    });

    /// <summary>The query without its vector: its words, the items it names, and the options.</summary>
    public SearchQuery ToQuery()
    {
        var words = string.Join(' ', _terms.Where(t => t.Text is not null && t.Weight > 0).Select(t => t.Text));
        var excluded = _terms.Where(t => t.ItemId is not null).Select(t => t.ItemId!).Distinct(StringComparer.Ordinal).ToArray();
        return new SearchQuery(null, _k, _filter, _minScore, excluded, _mode, words.Length == 0 ? null : words, _groupSize);
    }

    /// <summary>The query's vector: each term embedded or read, weighted, summed and normalized (null for a keyword search).</summary>
    public async Task<float[]?> VectorAsync(IVectorStore store, ImageEmbedder images, TextEmbedder texts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(texts);
        return _mode == SearchMode.Keyword ? null : await TermsVectorAsync(store, images, texts, cancellationToken);
    }

    private async Task<float[]> TermsVectorAsync(IVectorStore store, ImageEmbedder images, TextEmbedder texts, CancellationToken cancellationToken)
    {
        // Texts go to the text tower as one batch, images each to the vision pipeline, all at once.
        var textTerms = _terms.Where(t => t.Text is not null).ToList();
        var textRun = textTerms.Count > 0 ? texts.EmbedAsync([.. textTerms.Select(t => t.Text!)], cancellationToken) : null;
        var imageRuns = _terms.Where(t => t.Image is not null).Select(t => (Term: t, Run: images.EmbedAsync(t.Image!.Value, cancellationToken))).ToList();
        foreach (var term in _terms.Where(t => t.ItemId is not null))
        {
            var item = await store.GetAsync(term.ItemId!, withEmbedding: true, cancellationToken) ?? throw ItemsEndpoints.NotFound(term.ItemId!).Exception();
            term.Vector = item.Embedding;
        }

        if (textRun is not null)
        {
            var embedded = await textRun;
            for (var i = 0; i < textTerms.Count; i++) textTerms[i].Vector = embedded.Vectors[i];
        }

        foreach (var (term, run) in imageRuns) term.Vector = (await run).Vector;
        if (_terms.Count == 1) return _terms[0].Vector!;

        var sum = new float[_terms[0].Vector!.Length];
        foreach (var term in _terms)
        {
            // Stored vectors are half precision: normalized again, so each term weighs exactly its weight.
            var norm = TensorPrimitives.Norm(term.Vector!);
            TensorPrimitives.MultiplyAdd(term.Vector!, (float)(term.Weight / norm), sum, sum);
        }

        var length = TensorPrimitives.Norm(sum);
        if (!(length > 1e-4f))
        {
            throw JsonInput.Invalid("The query's terms cancel out (their weighted sum has no direction); change a weight or a term.", "query");
        }

        TensorPrimitives.Divide(sum, length, sum);
        return sum;
    }

    private void ReadForm(ReceivedForm form, RequestLimits limits)
    {
        var fields = form.Fields;
        ReadOptions(fields.GetValueOrDefault("k"), fields.GetValueOrDefault("filter"), fields.GetValueOrDefault("min_score"),
            fields.GetValueOrDefault("mode"), fields.GetValueOrDefault("group_by"), fields.GetValueOrDefault("group_size"));
        _terms.Add(new Term { Image = form.Files[0].Content, Weight = 1 });
        if (fields.TryGetValue("text", out var text))
        {
            if (string.IsNullOrWhiteSpace(text)) throw JsonInput.Invalid("text is empty; leave the field out to search by the photo alone.", "text");
            if (text.Length > limits.MaxTextChars) throw JsonInput.Invalid($"text has {text.Length:N0} characters; at most {limits.MaxTextChars:N0} are accepted (MAX_TEXT_CHARS).", "text");
            _terms.Add(new Term { Text = text, Weight = fields.TryGetValue("text_weight", out var weight) ? Weight(weight, "text_weight") : 1 });
        }
        else if (fields.ContainsKey("text_weight"))
        {
            throw JsonInput.Invalid("text_weight weighs the field text, which is missing.", "text_weight");
        }

        CheckWords();
    }

    private void ReadJson(JsonElement root, RequestLimits limits, int dimension, long maxImageBytes)
    {
        if (root.ValueKind != JsonValueKind.Object) throw JsonInput.Invalid("The body must be a JSON object with one of \"text\", \"vector\", \"item_id\" or \"query\".");
        var kinds = QueryKinds.Where(name => root.TryGetProperty(name, out _)).ToList();
        if (kinds.Count != 1)
        {
            throw JsonInput.Invalid(kinds.Count == 0
                ? "The body needs one query: \"text\", \"vector\", \"item_id\" or \"query\" (a list of terms), or send a photo as multipart 'file'."
                : $"Send exactly one query, not {string.Join(" and ", kinds.Select(k => $"\"{k}\""))}.");
        }

        ReadOptions(Raw(root, "k"), Raw(root, "filter"), Raw(root, "min_score"), Raw(root, "mode"), Raw(root, "group_by"), Raw(root, "group_size"));
        var query = root.GetProperty(kinds[0]);
        if (kinds[0] == "query")
        {
            if (query.ValueKind != JsonValueKind.Array) throw JsonInput.Invalid("\"query\" must be an array of terms, e.g. [{\"text\": \"red\", \"weight\": 0.5}].", "query");
            JsonInput.Count(query, "query", limits, "query");
            var index = 0;
            foreach (var term in query.EnumerateArray()) _terms.Add(ReadTerm(term, $"query[{index++}]", limits, dimension, maxImageBytes));
        }
        else
        {
            _terms.Add(ReadTerm(root, kinds[0], limits, dimension, maxImageBytes, single: true));
        }

        CheckWords();

        static string? Raw(JsonElement root, string name) => root.TryGetProperty(name, out var value) ? value.GetRawText() : null;
    }

    /// <summary>One term: exactly one of text, item_id, vector, image, and a weight (finite, not 0; 1 when absent).</summary>
    private static Term ReadTerm(JsonElement element, string name, RequestLimits limits, int dimension, long maxImageBytes, bool single = false)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw JsonInput.Invalid($"{name} must be an object with one of \"text\", \"item_id\", \"vector\" or \"image\".", "query");
        }

        var kinds = single ? [name] : TermKinds.Where(kind => element.TryGetProperty(kind, out _)).ToList();
        if (kinds.Count != 1)
        {
            throw JsonInput.Invalid(kinds.Count == 0
                ? $"{name} needs one of \"text\", \"item_id\", \"vector\" or \"image\"."
                : $"{name} has {string.Join(" and ", kinds.Select(k => $"\"{k}\""))}: a term is one of them.", "query");
        }

        var parameter = single ? kinds[0] : "query";
        var value = element.GetProperty(kinds[0]);
        var term = new Term { Weight = single ? 1 : Weight(element.TryGetProperty("weight", out var weight) ? weight.GetRawText() : null, $"{name}.weight", "query") };
        switch (kinds[0])
        {
            case "text": term.Text = JsonInput.Text(value, single ? "text" : $"{name}.text", limits, parameter); break;
            case "vector": term.Vector = JsonInput.Vector(value, single ? "vector" : $"{name}.vector", dimension); break;
            case "item_id": term.ItemId = ItemsEndpoints.CheckId(JsonInput.String(value, single ? "item_id" : $"{name}.item_id", parameter)); break;
            default:
                term.Owned = JsonInput.DataUri(value, $"{name}.image", parameter, maxImageBytes);
                term.Image = term.Owned.Memory;
                break;
        }

        return term;
    }

    private static double Weight(string? raw, string name, string? parameter = null)
    {
        if (raw is null) return 1;
        return double.TryParse(raw.Trim('"', ' '), NumberStyles.Float, CultureInfo.InvariantCulture, out var weight) && double.IsFinite(weight) && weight != 0
            ? weight
            : throw JsonInput.Invalid($"{name} must be a finite number other than 0 (negative: less like this).", parameter ?? name);
    }

    /// <summary>k (1-100, default 10), filter, min_score (-1 to 1), mode, group_by ("product") and group_size (1-10, default 3), from JSON text.</summary>
    private void ReadOptions(string? k, string? filter, string? minScore, string? mode, string? groupBy, string? groupSize)
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
        _mode = mode?.Trim('"', ' ') switch
        {
            null or "vector" => SearchMode.Vector,
            "keyword" => SearchMode.Keyword,
            "hybrid" => SearchMode.Hybrid,
            _ => throw JsonInput.Invalid("mode must be \"vector\" (the default), \"keyword\" or \"hybrid\".", "mode"),
        };
        if (_mode == SearchMode.Keyword && _minScore is not null)
        {
            throw JsonInput.Invalid("min_score is a cosine similarity; a keyword search ranks by words only (use mode \"hybrid\").", "min_score");
        }

        if (groupBy is not null && groupBy.Trim('"', ' ') != "product")
        {
            throw JsonInput.Invalid("group_by can only be \"product\" (one result per product, its best items inside).", "group_by");
        }

        if (groupSize is not null && groupBy is null) throw JsonInput.Invalid("group_size goes with group_by: \"product\".", "group_size");
        if (groupBy is null) return;
        var size = 3;
        if (groupSize is not null && (!int.TryParse(groupSize.Trim('"', ' '), NumberStyles.Integer, CultureInfo.InvariantCulture, out size) || size is < 1 or > 10))
        {
            throw JsonInput.Invalid("group_size must be a whole number from 1 to 10.", "group_size");
        }

        _groupSize = size;
    }

    /// <summary>Keyword and hybrid search read words: a text query, or text terms of positive weight.</summary>
    private void CheckWords()
    {
        if (_mode == SearchMode.Vector || _terms.Any(t => t.Text is not null && t.Weight > 0)) return;
        throw JsonInput.Invalid($"mode \"{_mode.ToString().ToLowerInvariant()}\" searches the items' words: give \"text\" (or a text term of positive weight).", "mode");
    }

    /// <summary>One term of the query; its vector once embedded or read.</summary>
    private sealed class Term
    {
        public double Weight { get; init; }

        public string? Text { get; set; }

        public string? ItemId { get; set; }

        public float[]? Vector { get; set; }

        /// <summary>A photo's encoded bytes (a multipart file's, or <see cref="Owned"/>'s).</summary>
        public ReadOnlyMemory<byte>? Image { get; set; }

        /// <summary>The buffer a data URI was decoded into, given back when the request ends.</summary>
        public ByteBuffer? Owned { get; set; }
    }

    /// <summary>The images the terms hold, given back when the request ends.</summary>
    private sealed class TermImages(List<Term> terms) : IDisposable
    {
        public void Dispose()
        {
            foreach (var term in terms) term.Owned?.Dispose();
        }
    }
}

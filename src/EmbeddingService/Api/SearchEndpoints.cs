using System.Globalization;
using System.Text.Json;
using EmbeddingService.Inference;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary><c>POST /search</c>: the items nearest to one query, by photo, text, vector or another item.</summary>
public static class SearchEndpoints
{
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField, TextFields: ["k", "filter", "min_score"]);
    private static readonly string[] QueryKinds = ["text", "vector", "item_id"];

    public static IEndpointRouteBuilder MapSearch(this IEndpointRouteBuilder app)
    {
        app.MapPost("/search", SearchAsync).WithName("Search").WithTags(ApiDocs.StoreAndSearch).AnswersProblems(400, 404, 408, 413, 422, 503).WithSummary("Search the catalogue")
            .WithDescription("Exactly one query: multipart 'file' (a photo; 'k', 'filter', 'min_score' as form fields), or JSON {\"text\": ...}, " +
                "{\"vector\": [512]} or {\"item_id\": ...} (more like this, without the item itself), with \"k\" (1-100, default 10), " +
                "\"filter\" (a JSON object the metadata must contain) and \"min_score\". -> {\"results\": [{\"id\", \"score\", \"metadata\"}]}, " +
                "score = cosine similarity, best first.")
            .Produces<SearchResponse>()
            .WithApiErrors()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> SearchAsync(HttpContext context, StorageState storage, ImageEmbedder images, TextEmbedder texts, UploadReceiver uploads,
        IOptions<RequestLimits> limits, CancellationToken cancellationToken)
    {
        var store = storage.Require();
        var (query, problem) = context.Request.HasJsonContentType()
            ? await JsonQueryAsync(context, store, texts, uploads, limits.Value, cancellationToken)
            : await PhotoQueryAsync(context, images, cancellationToken);
        if (problem is not null) return problem;
        var hits = await store.SearchAsync(query!, cancellationToken);
        return TypedResults.Ok(new SearchResponse([.. hits.Select(SearchResult.From)]));
    }

    /// <summary>JSON <c>{"text" | "vector" | "item_id", "k", "filter", "min_score"}</c>.</summary>
    private static async Task<(SearchQuery? Query, IResult? Problem)> JsonQueryAsync(HttpContext context, IVectorStore store, TextEmbedder texts, UploadReceiver uploads,
        RequestLimits limits, CancellationToken cancellationToken)
    {
        var (body, failure) = await uploads.ReceiveBodyAsync(context.Request, limits.MaxTextBodyBytes, cancellationToken);
        if (failure is not null) return (null, Problems.Body(context, failure));
        using (body)
        {
            return await ParseJsonQueryAsync(body!.Files[0].Content, store, texts, limits, cancellationToken);
        }
    }

    /// <summary>multipart <c>file</c> (a photo) with <c>k</c>, <c>filter</c>, <c>min_score</c> as form fields.</summary>
    private static async Task<(SearchQuery? Query, IResult? Problem)> PhotoQueryAsync(HttpContext context, ImageEmbedder images, CancellationToken cancellationToken)
    {
        var (received, refused) = await ImageForms.ReceiveAsync(context, Form, "Send a photo as multipart 'file', or JSON with \"text\", \"vector\" or \"item_id\".");
        if (refused is not null) return (null, refused);
        using var form = received!;
        var (k, filter, minScore, problem) = Options(
            form.Fields.TryGetValue("k", out var kText) ? kText : null,
            form.Fields.TryGetValue("filter", out var filterText) ? filterText : null,
            form.Fields.TryGetValue("min_score", out var minText) ? minText : null);
        if (problem is not null) return (null, problem);
        var embedding = await images.EmbedAsync(form.Files[0].Content, cancellationToken);
        return (new SearchQuery(embedding.Vector, k, filter, minScore, null), null);
    }

    private static async Task<(SearchQuery? Query, ProblemHttpResult? Problem)> ParseJsonQueryAsync(ReadOnlyMemory<byte> json, IVectorStore store, TextEmbedder texts,
        RequestLimits limits, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            return (null, Problems.Create(StatusCodes.Status400BadRequest, $"The body is not valid JSON: {e.Message}"));
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, Invalid("The body must be a JSON object with one of \"text\", \"vector\" or \"item_id\"."));
            }

            var kinds = QueryKinds.Where(name => root.TryGetProperty(name, out _)).ToList();
            if (kinds.Count != 1)
            {
                return (null, Invalid(kinds.Count == 0
                    ? "The body needs one query: \"text\", \"vector\" or \"item_id\" (or send a photo as multipart 'file')."
                    : $"Send exactly one query, not {string.Join(" and ", kinds.Select(k => $"\"{k}\""))}."));
            }

            var (k, filter, minScore, problem) = Options(
                root.TryGetProperty("k", out var kElement) ? kElement.GetRawText() : null,
                root.TryGetProperty("filter", out var filterElement) ? filterElement.GetRawText() : null,
                root.TryGetProperty("min_score", out var minElement) ? minElement.GetRawText() : null);
            if (problem is not null) return (null, problem);

            switch (kinds[0])
            {
                case "text":
                    var text = root.GetProperty("text");
                    if (EmbedTextEndpoints.One(text, "text", limits) is { } badText) return (null, badText);
                    var embedded = await texts.EmbedAsync([EmbedTextEndpoints.Text(text)], cancellationToken);
                    return (new SearchQuery(embedded.Vectors[0], k, filter, minScore, null), null);
                case "vector":
                    var (vector, badVector) = ItemsEndpoints.ReadVector(root.GetProperty("vector"));
                    return badVector is not null ? (null, badVector) : (new SearchQuery(vector!, k, filter, minScore, null), null);
                default:
                    var idElement = root.GetProperty("item_id");
                    if (idElement.ValueKind != JsonValueKind.String) return (null, Invalid("\"item_id\" must be a string."));
                    if (JsonText.TryGet(idElement) is not { } id) return (null, Problems.Create(StatusCodes.Status400BadRequest, JsonText.NotText("item_id")));
                    if (ItemsEndpoints.CheckId(id) is { } badId) return (null, badId);
                    var item = await store.GetAsync(id, withEmbedding: true, cancellationToken);
                    return item is null ? (null, ItemsEndpoints.NotFound(id)) : (new SearchQuery(item.Embedding!, k, filter, minScore, id), null);
            }
        }
    }

    /// <summary>k (1-100, default 10), filter (a JSON object, or a JSON string holding one) and min_score (-1 to 1), from JSON text.</summary>
    private static (int K, string? Filter, double? MinScore, ProblemHttpResult? Problem) Options(string? k, string? filter, string? minScore)
    {
        var count = 10;
        if (k is not null && (!int.TryParse(k.Trim('"', ' '), NumberStyles.Integer, CultureInfo.InvariantCulture, out count) || count is < 1 or > 100))
        {
            return (0, null, null, Invalid("k must be a whole number from 1 to 100."));
        }

        double? min = null;
        if (minScore is not null)
        {
            if (!double.TryParse(minScore.Trim('"', ' '), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) || parsed is < -1 or > 1 || double.IsNaN(parsed))
            {
                return (0, null, null, Invalid("min_score must be a number from -1 to 1 (cosine similarity)."));
            }

            min = parsed;
        }

        if (filter is null or "null")
        {
            return (count, null, min, null);
        }

        try
        {
            using var document = JsonDocument.Parse(filter, new JsonDocumentOptions { MaxDepth = 32 });
            var element = document.RootElement;
            if (element.ValueKind == JsonValueKind.String)
            {
                // A multipart form field, or a client that sent the object as a string.
                return JsonText.TryGet(element) is { } inner
                    ? Options(k, inner, minScore)
                    : (0, null, null, Problems.Create(StatusCodes.Status400BadRequest, JsonText.NotText("filter")));
            }

            return element.ValueKind == JsonValueKind.Object && !JsonText.HasNul(filter)
                ? (count, element.GetRawText(), min, null)
                : (0, null, null, Problems.Create(StatusCodes.Status400BadRequest, "filter must be a JSON object the metadata must contain, e.g. {\"category\": \"bags\"}, without the NUL character."));
        }
        catch (JsonException e)
        {
            return (0, null, null, Problems.Create(StatusCodes.Status400BadRequest, $"filter is not valid JSON: {e.Message}"));
        }
    }

    private static ProblemHttpResult Invalid(string detail) => Problems.Create(StatusCodes.Status422UnprocessableEntity, detail);
}

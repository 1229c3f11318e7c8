using EmbeddingService.Inference;
using EmbeddingService.Storage;

namespace EmbeddingService.Api;

/// <summary><c>POST /search</c>: the items nearest to one query, by photo, text, vector or another item.</summary>
public static class SearchEndpoints
{
    public static IEndpointRouteBuilder MapSearch(this IEndpointRouteBuilder app)
    {
        app.MapPost("/search", SearchAsync).WithName("Search").WithTags(ApiDocs.StoreAndSearch).AnswersProblems(400, 404, 408, 413, 422, 503).WithSummary("Search the catalogue")
            .WithDescription("Exactly one query: multipart 'file' (a photo; 'k', 'filter', 'min_score' as form fields), or JSON {\"text\": ...}, " +
                "{\"vector\": [embedding_dimension numbers]} or {\"item_id\": ...} (more like this, without the item itself), with \"k\" (1-100, default 10), " +
                "\"filter\" (a JSON object the metadata must contain) and \"min_score\". -> {\"results\": [{\"id\", \"score\", \"metadata\"}]}, " +
                "score = cosine similarity, best first.")
            .Produces<SearchResponse>()
            .WithApiErrors()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> SearchAsync(SearchBody body, StorageState storage, ImageEmbedder images, TextEmbedder texts, CancellationToken cancellationToken)
    {
        var store = storage.Require();
        var query = await body.ToQueryAsync(store, images, texts, cancellationToken);
        var hits = await store.SearchAsync(query, cancellationToken);
        return TypedResults.Ok(new SearchResponse([.. hits.Select(SearchResult.From)]));
    }
}

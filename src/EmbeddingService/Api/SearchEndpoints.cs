using EmbeddingService.Inference;
using EmbeddingService.Storage;

namespace EmbeddingService.Api;

/// <summary><c>POST /search</c>: the items nearest to one query, by photo, text, vector or another item.</summary>
public static class SearchEndpoints
{
    public static IEndpointRouteBuilder MapSearch(this IEndpointRouteBuilder app)
    {
        app.MapPost("/search", SearchAsync).WithName("Search").WithTags(ApiDocs.StoreAndSearch).AnswersProblems(400, 404, 408, 413, 422, 503).WithSummary("Search the catalogue")
            .WithDescription("Exactly one query: multipart 'file' (a photo; the options below as form fields, and 'text' with 'text_weight' to refine it " +
                "with words), or JSON {\"text\": ...}, {\"vector\": [embedding_dimension numbers]}, {\"item_id\": ...} (more like this, without the item " +
                "itself) or {\"query\": [terms]}: each term one of {\"text\"}, {\"item_id\"}, {\"vector\"}, {\"image\": \"data:image/...;base64,...\"} with a " +
                "\"weight\" (not 0; default 1; negative: less like this); the query vector is normalize(sum of weight x normalized term vector), and items " +
                "named by a term are left out. Options: \"k\" (1-100, default 10: items, or products when grouped), \"filter\" (a JSON object the metadata " +
                "must contain), \"min_score\" (cosine), \"mode\": \"vector\" (default), \"keyword\" (the items' text, ranked by ts_rank_cd) or \"hybrid\" " +
                "(both lists fused by reciprocal rank, 1/(60 + rank); each result says its \"vector_rank\" and \"keyword_rank\"), \"group_by\": \"product\" " +
                "with \"group_size\" (1-10, default 3): {\"results\": [{\"product\", \"score\", \"items\": [...]}]}, best product first. " +
                "-> {\"results\": [{\"id\", \"score\", \"metadata\", \"product\"}]}, best first.")
            .WithRequestExamples(
                ("text", """{"text": "red leather handbag", "k": 10, "filter": {"category": "bags"}}"""),
                ("by product", """{"text": "red leather handbag", "k": 10, "group_by": "product", "group_size": 3}"""),
                ("composed", """{"query": [{"item_id": "sku-123-front"}, {"text": "red", "weight": 0.6}, {"item_id": "sku-456-front", "weight": -0.3}], "k": 10}"""),
                ("hybrid", """{"text": "AJ1-555088 sneakers", "mode": "hybrid", "k": 10}"""),
                ("keyword", """{"text": "\"AJ1-555088\"", "mode": "keyword"}"""))
            .Produces<SearchResponse>()
            .Produces<GroupedSearchResponse>(StatusCodes.Status200OK)
            .WithApiErrors()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> SearchAsync(SearchBody body, StorageState storage, ImageEmbedder images, TextEmbedder texts, CancellationToken cancellationToken)
    {
        var store = storage.Require();
        var query = body.ToQuery();
        var hits = await store.SearchAsync(query, body.VectorAsync(store, images, texts, cancellationToken), cancellationToken);
        return TypedResults.Bytes(SearchResults.Write(hits, query), "application/json");
    }
}

using System.Reflection;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Model;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

public static class ServiceInfoEndpoints
{
    private static readonly string Version =
        typeof(ServiceInfoEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "1.0.0";

    private static readonly Dictionary<string, string> Endpoints = new()
    {
        ["GET /"] = "this description",
        ["GET /ui/"] = "the visual search page",
        ["GET /health"] = "health and model status",
        ["GET /health/live"] = "liveness probe: the process answers",
        ["GET /health/ready"] = "readiness probe: model loaded, database reachable when configured, not stopping",
        ["GET /metrics"] = "Prometheus metrics",
        ["POST /embed-image"] = "multipart field 'file' -> L2-normalized embedding (embedding_dimension numbers)",
        ["POST /embed-images"] = "multipart fields 'files' (up to MAX_BATCH_ITEMS) -> embeddings in order, all or nothing",
        ["POST /embed-text"] = "JSON {\"text\": \"...\"} or {\"texts\": [...]} -> embedding(s) in the same space as images",
        ["POST /v1/embeddings"] = "OpenAI-compatible: texts and image data URIs -> embeddings",
        ["PUT /items/{id}"] = "store an item: multipart 'file' (+ 'metadata' JSON) or JSON {\"vector\", \"metadata\"} (needs DATABASE_URL)",
        ["GET /items/{id}"] = "an item (?include=embedding for its vector); /items/{id}/thumbnail its thumbnail",
        ["GET /items"] = "items in id order (?limit=&after=)",
        ["DELETE /items/{id}"] = "delete an item",
        ["POST /search"] = "nearest items to a photo, a text, a vector or an item (more like this)",
        ["GET /openapi.json"] = "OpenAPI document",
        ["GET /docs"] = "interactive API documentation",
    };

    /// <summary><c>GET /</c>: what this service is and which model it runs.</summary>
    public static IEndpointRouteBuilder MapServiceInfo(this IEndpointRouteBuilder app)
    {
        app.MapGet("/", (ModelState state, IOptions<ModelOptions> options) =>
        {
            var model = state.Model;
            // Until the model's config is read (it may be downloading), the name MODEL_REPO gives.
            var card = state.Card;
            return TypedResults.Ok(new ServiceInfoResponse(
                "visual-search-embedding-service",
                Version,
                card?.Name ?? ModelCard.OpenAiName(options.Value.Repository) ?? options.Value.Repository,
                model is not null,
                model?.Config.IsSynthetic,
                model?.Config.SyntheticNote,
                options.Value.Variant.ToString().ToLowerInvariant(),
                card?.Dimension,
                card?.ImageSize,
                card is { PatchSize: > 0 } ? card.PatchSize : null,
                model?.Device ?? "cpu",
                Endpoints,
                "/ui/",
                CpuInfo.From(Cpu.CpuFeatures.Current)));
        }).WithName("ServiceInfo").WithTags(ApiDocs.Operations).WithSummary("Service information");
        return app;
    }
}

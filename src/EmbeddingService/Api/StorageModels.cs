using System.Text.Json;
using System.Text.Json.Serialization;
using EmbeddingService.Storage;

namespace EmbeddingService.Api;

public sealed record ItemResponse(
    string Id,
    string Model,
    string Variant,
    string? ImageSha256,
    JsonElement Metadata,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThumbnailUrl,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] float[]? Embedding)
{
    public static ItemResponse From(StoredItem item) => new(item.Id, item.Model, item.Variant, item.ImageSha256, Json(item.MetadataJson),
        item.HasThumbnail ? $"/items/{Uri.EscapeDataString(item.Id)}/thumbnail" : null, item.CreatedAt, item.UpdatedAt, item.Embedding);

    internal static JsonElement Json(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}

public sealed record ItemPage(
    IReadOnlyList<ItemResponse> Items,
    string? Next);

public sealed record SearchResult(
    string Id,
    double Score,
    JsonElement Metadata,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThumbnailUrl)
{
    public static SearchResult From(SearchHit hit) => new(hit.Id, hit.Score, ItemResponse.Json(hit.MetadataJson),
        hit.HasThumbnail ? $"/items/{Uri.EscapeDataString(hit.Id)}/thumbnail" : null);
}

public sealed record SearchResponse(IReadOnlyList<SearchResult> Results);

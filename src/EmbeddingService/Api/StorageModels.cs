using System.Text.Json;
using System.Text.Json.Serialization;
using EmbeddingService.Storage;

namespace EmbeddingService.Api;

public sealed record ItemResponse(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("variant")] string Variant,
    [property: JsonPropertyName("image_sha256")] string? ImageSha256,
    [property: JsonPropertyName("metadata")] JsonElement Metadata,
    [property: JsonPropertyName("thumbnail_url"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThumbnailUrl,
    [property: JsonPropertyName("created_at")] DateTime CreatedAt,
    [property: JsonPropertyName("updated_at")] DateTime UpdatedAt,
    [property: JsonPropertyName("embedding"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] float[]? Embedding)
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
    [property: JsonPropertyName("items")] IReadOnlyList<ItemResponse> Items,
    [property: JsonPropertyName("next")] string? Next);

public sealed record SearchResult(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("score")] double Score,
    [property: JsonPropertyName("metadata")] JsonElement Metadata,
    [property: JsonPropertyName("thumbnail_url"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThumbnailUrl)
{
    public static SearchResult From(SearchHit hit) => new(hit.Id, hit.Score, ItemResponse.Json(hit.MetadataJson),
        hit.HasThumbnail ? $"/items/{Uri.EscapeDataString(hit.Id)}/thumbnail" : null);
}

public sealed record SearchResponse([property: JsonPropertyName("results")] IReadOnlyList<SearchResult> Results);

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
    string? Product,
    string? Text,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThumbnailUrl,
    DateTime CreatedAt,
    DateTime UpdatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] float[]? Embedding)
{
    /// <summary>On PUT: up to 5 stored items within DUPLICATE_MAX_DISTANCE of this one, nearest first (<c>[]</c> when none).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<Neighbour>? NearDuplicates { get; init; }

    public static ItemResponse From(StoredItem item) => new(item.Id, item.Model, item.Variant, item.ImageSha256, Json(item.MetadataJson), item.Product, item.Text,
        item.HasThumbnail ? ThumbnailPath(item.Id) : null, item.CreatedAt, item.UpdatedAt, item.Embedding);

    /// <summary>Where an item's thumbnail is served (<c>GET /items/{id}/thumbnail</c>).</summary>
    internal static string ThumbnailPath(string id) => $"/items/{Uri.EscapeDataString(id)}/thumbnail";

    internal static JsonElement Json(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}

public sealed record ItemPage(
    IReadOnlyList<ItemResponse> Items,
    string? Next);

/// <summary>One item found (the shape <see cref="SearchResults"/> writes; documented for /docs).</summary>
/// <param name="Score">Cosine similarity (mode vector), ts_rank_cd (keyword), or the sum of 1 / (60 + rank) over both lists (hybrid).</param>
/// <param name="Product">The item's product, when it has one (ungrouped results).</param>
/// <param name="VectorRank">Hybrid mode only: its place by vector (null: not in that list).</param>
/// <param name="KeywordRank">Hybrid mode only: its place by words (null: not in that list).</param>
public sealed record SearchResult(
    string Id,
    double Score,
    JsonElement Metadata,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThumbnailUrl,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Product,
    int? VectorRank,
    int? KeywordRank);

/// <summary><c>{"results": [...]}</c>: items, best first; with <c>group_by</c>, products (<see cref="ProductResult"/>).</summary>
public sealed record SearchResponse(IReadOnlyList<SearchResult> Results);

/// <summary>One product found: its best item's score and its best items (product null: an item that has none, a product of its own).</summary>
public sealed record ProductResult(string? Product, double Score, IReadOnlyList<SearchResult> Items);

public sealed record GroupedSearchResponse(IReadOnlyList<ProductResult> Results);

/// <summary>
/// Writes a search's answer straight from the rows: the metadata is the database's JSON text, written as it is
/// rather than parsed into a document and serialized again.
/// </summary>
internal static class SearchResults
{
    public static byte[] Write(IReadOnlyList<SearchHit> hits, SearchQuery query)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024 + (hits.Count * 256));
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("results");
            if (query.GroupSize is { } groupSize)
            {
                foreach (var product in SearchGroups.Take(hits, query.K, groupSize))
                {
                    json.WriteStartObject();
                    if (product.Product is null) json.WriteNull("product");
                    else json.WriteString("product", product.Product);
                    json.WriteNumber("score", product.Score);
                    json.WriteStartArray("items");
                    foreach (var hit in product.Items) Item(json, hit, query.Mode, withProduct: false);
                    json.WriteEndArray();
                    json.WriteEndObject();
                }
            }
            else
            {
                foreach (var hit in hits) Item(json, hit, query.Mode, withProduct: true);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void Item(Utf8JsonWriter json, SearchHit hit, SearchMode mode, bool withProduct)
    {
        json.WriteStartObject();
        json.WriteString("id", hit.Id);
        json.WriteNumber("score", hit.Score);
        json.WritePropertyName("metadata");
        json.WriteRawValue(hit.MetadataJson, skipInputValidation: true);
        if (hit.HasThumbnail) json.WriteString("thumbnail_url", ItemResponse.ThumbnailPath(hit.Id));
        if (withProduct && hit.Product is not null) json.WriteString("product", hit.Product);
        if (mode == SearchMode.Hybrid)
        {
            Rank(json, "vector_rank", hit.VectorRank);
            Rank(json, "keyword_rank", hit.KeywordRank);
        }

        json.WriteEndObject();
    }

    private static void Rank(Utf8JsonWriter json, string name, int? rank)
    {
        if (rank is { } place) json.WriteNumber(name, place);
        else json.WriteNull(name);
    }
}

using EmbeddingService.Errors;

namespace EmbeddingService.Storage;

/// <summary>The vector store the API uses: items with their embedding, metadata and thumbnail, and cosine search.</summary>
public interface IVectorStore
{
    /// <summary>Which model's vectors the store holds, and their dimension: what vectors given to it must have.</summary>
    StoreIdentity Identity { get; }

    /// <summary>Inserts or replaces; whether the item is new, and the item as stored.</summary>
    Task<(bool Created, StoredItem Item)> UpsertAsync(NewItem item, CancellationToken cancellationToken);

    /// <summary>Many items at once (binary COPY into a staging table, then one upsert); returns how many were new.</summary>
    Task<int> UpsertManyAsync(IReadOnlyList<NewItem> items, CancellationToken cancellationToken);

    /// <summary>The stored image hash, metadata, product and text of those of <paramref name="ids"/> that exist, to skip what did not change.</summary>
    Task<IReadOnlyDictionary<string, ItemFingerprint>> GetFingerprintsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken);

    Task<StoredItem?> GetAsync(string id, bool withEmbedding, CancellationToken cancellationToken);

    Task<Thumbnail?> GetThumbnailAsync(string id, CancellationToken cancellationToken);

    /// <summary>Items in id order after <paramref name="after"/>; the cursor of the next page, if there is one.</summary>
    Task<(IReadOnlyList<StoredItem> Items, string? Next)> ListAsync(int limit, string? after, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Best first: by cosine similarity, by the items' words, or both fused (<see cref="SearchQuery.Mode"/>); grouped,
    /// at most GroupSize items of a product and enough for k products (<see cref="SearchGroups.Take"/>).
    /// </summary>
    Task<IReadOnlyList<SearchHit>> SearchAsync(SearchQuery query, CancellationToken cancellationToken);

    /// <summary>The same, with the query's vector still being computed (what does not need it starts at once).</summary>
    Task<IReadOnlyList<SearchHit>> SearchAsync(SearchQuery query, Task<float[]?>? pendingVector, CancellationToken cancellationToken);

    /// <summary>Records <paramref name="id"/>'s stored neighbours within <paramref name="radius"/> (at most <paramref name="limit"/>) as its near pairs, and returns them.</summary>
    Task<IReadOnlyList<Neighbour>> ScanAsync(string id, float[] vector, double radius, int limit, CancellationToken cancellationToken);

    /// <summary>Scans the next items after <paramref name="after"/> that are not scanned at this radius since they changed.</summary>
    Task<IReadOnlyList<ScannedItem>> ScanNextAsync(string after, int batch, double radius, CancellationToken cancellationToken);

    /// <summary>Each vector's stored neighbours within the radius (nothing recorded): what an indexer checks before writing.</summary>
    Task<IReadOnlyList<ScannedItem>> FindNeighboursAsync(IReadOnlyList<(string Id, float[] Vector)> items, double radius, int limit, CancellationToken cancellationToken);

    /// <summary>Duplicate groups within the distance, a page in group order after <paramref name="after"/>.</summary>
    Task<DuplicatePage> DuplicatesAsync(double maxDistance, int limit, string? after, CancellationToken cancellationToken);

    /// <summary>Deletes <paramref name="remove"/> in one transaction once every item of <paramref name="keep"/> is found; what was deleted.</summary>
    Task<IReadOnlyList<string>> DeleteManyAsync(IReadOnlyList<string> keep, IReadOnlyList<string> remove, CancellationToken cancellationToken);

    /// <summary>Whether the primary answers now, and the standby (null when there is none).</summary>
    Task<Reachability> PingAsync(CancellationToken cancellationToken);
}

/// <summary>Which halves of the store answer: the primary (writes, and reads without a standby) and the standby (reads).</summary>
public sealed record Reachability(bool Primary, bool? Replica)
{
    public bool Reads => Primary || Replica == true;
}

/// <param name="Product">The product the item is a photo of (null: a product of its own).</param>
/// <param name="Text">Its words for full-text search (title, brand, SKU), or null.</param>
/// <param name="ImagePixels">Width x height of the image it was embedded from (null for a vector given as is): which copy is largest.</param>
public sealed record NewItem(string Id, float[] Embedding, string Model, string Variant, string? ImageSha256, string MetadataJson, byte[]? Thumbnail, string? ThumbnailType,
    string? Product = null, string? Text = null, long? ImagePixels = null);

/// <summary>What an indexer compares to tell whether an item changed.</summary>
public sealed record ItemFingerprint(string? ImageSha256, string MetadataJson, string? Product, string? Text);

/// <summary>A vector computed elsewhere, as a bulk load writes it.</summary>
public sealed record VectorRow(string Id, float[] Vector, string MetadataJson, string? Product = null, string? Text = null);

public sealed record StoredItem(string Id, string Model, string Variant, string? ImageSha256, string MetadataJson, DateTime CreatedAt, DateTime UpdatedAt,
    bool HasThumbnail, float[]? Embedding, string? Product = null, string? Text = null);

public sealed record Thumbnail(byte[] Bytes, string ContentType, string ETag);

/// <summary>How a search ranks: by the query's vector, by the items' words, or both fused by reciprocal rank.</summary>
public enum SearchMode
{
    Vector,
    Keyword,
    Hybrid,
}

/// <param name="Vector">The query's vector (null only in keyword mode).</param>
/// <param name="K">Items, or products when grouped.</param>
/// <param name="FilterJson">A JSON object the item's metadata must contain (jsonb @>), or null.</param>
/// <param name="MinScore">The least cosine similarity of an item found by its vector.</param>
/// <param name="ExcludeIds">Items never in the results (those the query names).</param>
/// <param name="Words">What keyword and hybrid modes look for in the items' text.</param>
/// <param name="GroupSize">Grouped by product, with up to this many items each; null: items.</param>
public sealed record SearchQuery(float[]? Vector, int K, string? FilterJson, double? MinScore, IReadOnlyList<string>? ExcludeIds = null,
    SearchMode Mode = SearchMode.Vector, string? Words = null, int? GroupSize = null)
{
    public bool Grouped => GroupSize is not null;
}

/// <param name="Score">What ranked it: cosine similarity (vector), ts_rank_cd (keyword), or the fused reciprocal ranks (hybrid).</param>
/// <param name="VectorRank">Its place among the items found by vector (1 = first), when it is there.</param>
/// <param name="KeywordRank">Its place among the items found by words, when it is there.</param>
public sealed record SearchHit(string Id, double Score, string MetadataJson, bool HasThumbnail, string? Product = null, int? VectorRank = null, int? KeywordRank = null);

/// <summary>A product found: its best item's score, and its best items (an item without a product is a product of its own, Product null).</summary>
public sealed record ProductHit(string? Product, double Score, IReadOnlyList<SearchHit> Items);

public static class SearchGroups
{
    /// <summary>The first <paramref name="k"/> products of a ranked list, each with its first <paramref name="groupSize"/> items.</summary>
    public static IReadOnlyList<ProductHit> Take(IReadOnlyList<SearchHit> ranked, int k, int groupSize)
    {
        ArgumentNullException.ThrowIfNull(ranked);
        var groups = new List<(string? Product, List<SearchHit> Items)>(k);
        var places = new Dictionary<(string?, string?), int>();
        foreach (var hit in ranked)
        {
            var key = (hit.Product, hit.Product is null ? hit.Id : null);
            if (places.TryGetValue(key, out var place))
            {
                if (groups[place].Items.Count < groupSize) groups[place].Items.Add(hit);
            }
            else if (groups.Count < k)
            {
                places[key] = groups.Count;
                groups.Add((hit.Product, [hit]));
            }
        }

        return [.. groups.Select(g => new ProductHit(g.Product, g.Items[0].Score, g.Items))];
    }
}

/// <summary>The database cannot be reached now; the request may be retried (503, Retry-After 5 s).</summary>
public sealed class StorageUnavailableException : ApiException
{
    public StorageUnavailableException()
        : this("The database cannot be reached now; retry shortly.")
    {
    }

    public StorageUnavailableException(string message)
        : base(new ApiError(ErrorKind.Unavailable, message, "database_unavailable"))
    {
    }

    public StorageUnavailableException(string message, Exception innerException)
        : base(new ApiError(ErrorKind.Unavailable, message, "database_unavailable"), innerException)
    {
    }
}

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

    /// <summary>The stored image hash and metadata of those of <paramref name="ids"/> that exist, to skip what did not change.</summary>
    Task<IReadOnlyDictionary<string, (string? ImageSha256, string MetadataJson)>> GetFingerprintsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken);

    Task<StoredItem?> GetAsync(string id, bool withEmbedding, CancellationToken cancellationToken);

    Task<Thumbnail?> GetThumbnailAsync(string id, CancellationToken cancellationToken);

    /// <summary>Items in id order after <paramref name="after"/>; the cursor of the next page, if there is one.</summary>
    Task<(IReadOnlyList<StoredItem> Items, string? Next)> ListAsync(int limit, string? after, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);

    /// <summary>Best first by cosine similarity.</summary>
    Task<IReadOnlyList<SearchHit>> SearchAsync(SearchQuery query, CancellationToken cancellationToken);

    /// <summary>Whether the primary answers now, and the standby (null when there is none).</summary>
    Task<Reachability> PingAsync(CancellationToken cancellationToken);
}

/// <summary>Which halves of the store answer: the primary (writes, and reads without a standby) and the standby (reads).</summary>
public sealed record Reachability(bool Primary, bool? Replica)
{
    public bool Reads => Primary || Replica == true;
}

public sealed record NewItem(string Id, float[] Embedding, string Model, string Variant, string? ImageSha256, string MetadataJson, byte[]? Thumbnail, string? ThumbnailType);

public sealed record StoredItem(string Id, string Model, string Variant, string? ImageSha256, string MetadataJson, DateTime CreatedAt, DateTime UpdatedAt,
    bool HasThumbnail, float[]? Embedding);

public sealed record Thumbnail(byte[] Bytes, string ContentType, string ETag);

/// <param name="FilterJson">A JSON object the item's metadata must contain (jsonb @>), or null.</param>
public sealed record SearchQuery(float[] Vector, int K, string? FilterJson, double? MinScore, string? ExcludeId);

public sealed record SearchHit(string Id, double Score, string MetadataJson, bool HasThumbnail);

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

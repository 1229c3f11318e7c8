using Npgsql;

namespace EmbeddingService.Storage;

/// <summary>
/// Versioned schema changes, applied at start inside one transaction under an advisory lock, so that several
/// instances starting at once apply each exactly once. Then the store's identity (model, variant, dimension)
/// is checked: vectors from another model would make every search meaningless. Version 2 (today's layout,
/// <see cref="StoreLayout"/>) rewrites the items: a store of up to MIGRATE_INLINE_LIMIT items is rewritten here
/// (seconds); a larger one is left as it is, storage stays off with a sentence naming the <c>migrate</c> command,
/// which moves it online (<see cref="OnlineMigration"/>) while the previous version keeps serving it.
/// </summary>
internal static class StorageMigrations
{
    /// <summary>An arbitrary constant: the advisory lock this service's migrations take.</summary>
    internal const long LockKey = 0x5EA2C4_0001;

    /// <summary>The schema version this build runs on.</summary>
    public const int Current = 3;

    /// <summary>Version 1: the items with <c>vector(512)</c> (ViT-B/32's only), thumbnails inline, HNSW on the full vectors.</summary>
    private static string Version1(StorageOptions options) => $$"""
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE IF NOT EXISTS store_info (key text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE IF NOT EXISTS items (
            id text PRIMARY KEY,
            embedding vector(512) NOT NULL,
            model text NOT NULL,
            variant text NOT NULL,
            image_sha256 text,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            thumbnail bytea,
            thumbnail_type text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now());
        CREATE INDEX IF NOT EXISTS items_embedding ON items USING hnsw (embedding vector_cosine_ops)
            WITH (m = {{options.HnswM}}, ef_construction = {{options.HnswEfConstruction}});
        CREATE INDEX IF NOT EXISTS items_metadata ON items USING gin (metadata jsonb_path_ops);
        """;

    /// <summary>Version 2 in place, for a store small enough to be rewritten inside the start-up transaction.</summary>
    /// <param name="dimension">The model's: an empty store of version 1 (a new one) takes any; one holding vectors is ViT-B/32's, checked before.</param>
    private static string Version2InPlace(StorageOptions options, int dimension) => $"""
        {StoreLayout.ThumbnailsTable};
        INSERT INTO item_thumbnails (id, bytes, content_type)
            SELECT id, thumbnail, coalesce(thumbnail_type, 'image/jpeg') FROM items WHERE thumbnail IS NOT NULL;
        DROP INDEX IF EXISTS items_embedding;
        ALTER TABLE items DROP COLUMN thumbnail, DROP COLUMN thumbnail_type,
            ALTER COLUMN embedding TYPE halfvec({dimension}) USING embedding::halfvec({dimension});
        {StoreLayout.ThumbnailsForeignKey};
        {StoreLayout.VectorIndex("items", "items_embedding", options, dimension, concurrently: false)};
        """;

    /// <summary>Version 3 in place: products, texts and image sizes (columns without a rewrite, and their indexes), and what duplicates are known.</summary>
    internal static string Version3InPlace() => $"""
        {StoreLayout.ProductAndTextColumns("items")};
        {StoreLayout.ProductIndex("items", "items_product", concurrently: false)};
        {StoreLayout.TextIndex("items", "items_text", concurrently: false)};
        {StoreLayout.ImageHashIndex("items", "items_image_sha256", concurrently: false)};
        {StoreLayout.DuplicateTables};
        """;

    /// <exception cref="StoreMismatchException">The store holds vectors of another model, variant or dimension.</exception>
    /// <exception cref="StoreLayoutException">The store is too large to be moved to today's layout at start.</exception>
    /// <param name="upTo">Stop at this version (tests write stores of earlier versions).</param>
    public static async Task ApplyAsync(NpgsqlDataSource dataSource, StorageOptions options, StoreIdentity identity, CancellationToken cancellationToken, int upTo = Current)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await Execute(connection, "SELECT pg_advisory_xact_lock(@key)", cancellationToken, ("key", LockKey));
        await Execute(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", cancellationToken);
        var applied = await VersionAsync(connection, cancellationToken);
        if (applied < 1 && upTo >= 1)
        {
            await Execute(connection, Version1(options), cancellationToken);
            await MarkAsync(connection, 1, cancellationToken);
        }

        // Before the layout changes: a store of another model is refused as it is, not half-converted.
        await CheckIdentityAsync(connection, options, identity, cancellationToken);
        if (applied < 2 && upTo >= 2)
        {
            var pgvector = await LayoutPgvectorAsync(connection, cancellationToken);

            var items = await CountUpToAsync(connection, options.MigrateInlineLimit + 1, cancellationToken);
            if (items > options.MigrateInlineLimit)
            {
                throw new StoreLayoutException(
                    $"The store holds more than {options.MigrateInlineLimit:N0} items (MIGRATE_INLINE_LIMIT) in the layout of schema version 1; moving them to " +
                    "today's layout (half-precision vectors, a binary index, thumbnails apart) is not done inside start-up. Run " +
                    "'EmbeddingService migrate' with this DATABASE_URL: it copies the items online while the previous version keeps serving them, then swaps " +
                    "the tables in a moment; storage stays off here until then (the embedding endpoints work).");
            }

            await Execute(connection, StoreLayout.BuildSettings(options, pgvector, local: true), cancellationToken);
            await Execute(connection, Version2InPlace(options, identity.Dimension), cancellationToken);
            await MarkAsync(connection, 2, cancellationToken);
            applied = 2;
        }

        if (applied < 3 && upTo >= 3)
        {
            var items = await CountUpToAsync(connection, options.MigrateInlineLimit + 1, cancellationToken);
            if (items > options.MigrateInlineLimit)
            {
                throw new StoreLayoutException(
                    $"The store holds more than {options.MigrateInlineLimit:N0} items (MIGRATE_INLINE_LIMIT) in the layout of schema version 2; adding " +
                    "products and texts (two columns, no rewrite, and their indexes) is not done inside start-up. Run 'EmbeddingService migrate' with " +
                    "this DATABASE_URL: it builds the indexes online while the previous version keeps serving; storage stays off here until then " +
                    "(the embedding endpoints work).");
            }

            await Execute(connection, Version3InPlace(), cancellationToken);
            await MarkAsync(connection, 3, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Whether a (read-only) database holds a store of today's layout and of this identity, without changing anything.</summary>
    public static async Task<bool> IsCurrentAsync(NpgsqlDataSource dataSource, StoreIdentity identity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(identity);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (await Scalar(connection, "SELECT to_regclass('schema_migrations') IS NOT NULL AND to_regclass('store_info') IS NOT NULL", cancellationToken) is not true) return false;
        if (await VersionAsync(connection, cancellationToken) != Current) return false;
        var stored = await StoreInfoAsync(connection, cancellationToken);

        return identity.Entries.All(e => stored.GetValueOrDefault(e.Key) == e.Value);
    }

    /// <summary>The identity the store records (model, variant, dimension), or null for a database that holds no store yet.</summary>
    public static async Task<StoreIdentity?> StoredIdentityAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (await Scalar(connection, "SELECT to_regclass('store_info') IS NOT NULL", cancellationToken) is not true) return null;
        var stored = await StoreInfoAsync(connection, cancellationToken);
        return stored.TryGetValue("model", out var model) && stored.TryGetValue("dimension", out var dimension) && int.TryParse(dimension, out var width)
            ? new StoreIdentity(model, stored.GetValueOrDefault(StoreIdentity.VariantKey, "fp32"), width)
            : null;
    }

    internal static async Task<int> VersionAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        (int)(await Scalar(connection, "SELECT coalesce(max(version), 0) FROM schema_migrations", cancellationToken) ?? 0);

    internal static Task MarkAsync(NpgsqlConnection connection, int version, CancellationToken cancellationToken) =>
        Execute(connection, "INSERT INTO schema_migrations (version) VALUES (@version) ON CONFLICT DO NOTHING", cancellationToken, ("version", version));

    internal static async Task<string> PgvectorVersionAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        (string)(await Scalar(connection, "SELECT extversion FROM pg_extension WHERE extname = 'vector'", cancellationToken))!;

    /// <summary>The pgvector version, when it can hold today's layout (binary_quantize of halfvec: 0.7.0 or later).</summary>
    /// <exception cref="StoreLayoutException">pgvector is older.</exception>
    internal static async Task<string> LayoutPgvectorAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var pgvector = await PgvectorVersionAsync(connection, cancellationToken);
        return System.Version.TryParse(pgvector, out var version) && version >= new System.Version(0, 7)
            ? pgvector
            : throw new StoreLayoutException($"pgvector {pgvector} is installed; today's layout (half-precision vectors with a binary index) needs pgvector 0.7.0 " +
                "or later (0.8.2 or later in production: see the README). Upgrade it (ALTER EXTENSION vector UPDATE) before storage can be used.");
    }

    /// <summary>What store_info records: the identity of the vectors the store holds.</summary>
    private static async Task<Dictionary<string, string>> StoreInfoAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("SELECT key, value FROM store_info", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) stored[reader.GetString(0)] = reader.GetString(1);
        return stored;
    }

    private static async Task<long> CountUpToAsync(NpgsqlConnection connection, long cap, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT count(*) FROM (SELECT 1 FROM items LIMIT @cap) stored", connection);
        command.Parameters.AddWithValue("cap", cap);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task CheckIdentityAsync(NpgsqlConnection connection, StorageOptions options, StoreIdentity identity, CancellationToken cancellationToken)
    {
        var stored = await StoreInfoAsync(connection, cancellationToken);

        foreach (var (key, value) in identity.Entries)
        {
            if (!stored.TryGetValue(key, out var existing))
            {
                await Execute(connection, "INSERT INTO store_info (key, value) VALUES (@key, @value)", cancellationToken, ("key", key), ("value", value));
            }
            else if (existing != value && !(key == StoreIdentity.VariantKey && options.AllowMixedVariants))
            {
                throw new StoreMismatchException(
                    $"The database's items were embedded with {key} '{existing}', this service runs '{value}': their vectors are not comparable. " +
                    (key == StoreIdentity.VariantKey ? "Use a database of its own for this variant, or set ALLOW_MIXED_VARIANTS=true." : "Use a database of its own for this model."));
            }
        }
    }

    internal static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    internal static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(cancellationToken);
    }
}

/// <summary>What the vectors of a store come from; a store holds vectors of one identity.</summary>
public sealed record StoreIdentity(string Model, string Variant, int Dimension)
{
    public const string VariantKey = "variant";

    public IEnumerable<(string Key, string Value)> Entries =>
        [("model", Model), ("dimension", Dimension.ToString(System.Globalization.CultureInfo.InvariantCulture)), (VariantKey, Variant)];
}

/// <summary>The database holds vectors this service must not mix with its own.</summary>
public sealed class StoreMismatchException : Exception
{
    public StoreMismatchException()
    {
    }

    public StoreMismatchException(string message)
        : base(message)
    {
    }

    public StoreMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The store cannot take today's layout yet: too large to be moved at start (the migrate command does it), or pgvector too old.</summary>
public sealed class StoreLayoutException : Exception
{
    public StoreLayoutException()
    {
    }

    public StoreLayoutException(string message)
        : base(message)
    {
    }

    public StoreLayoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

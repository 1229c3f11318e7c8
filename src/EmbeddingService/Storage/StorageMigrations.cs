using Npgsql;

namespace EmbeddingService.Storage;

/// <summary>
/// Versioned schema changes, applied at start inside one transaction under an advisory lock, so that several
/// instances starting at once apply each exactly once. Then the store's identity (model, variant, dimension)
/// is checked: vectors from another model would make every search meaningless.
/// </summary>
internal static class StorageMigrations
{
    /// <summary>An arbitrary constant: the advisory lock this service's migrations take.</summary>
    private const long LockKey = 0x5EA2C4_0001;

    private static string[] Steps(StorageOptions options) =>
    [
        // 1: the items and what the store holds.
        $$"""
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
        """,
    ];

    /// <exception cref="StoreMismatchException">The store holds vectors of another model, variant or dimension.</exception>
    public static async Task ApplyAsync(NpgsqlDataSource dataSource, StorageOptions options, StoreIdentity identity, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await Execute(connection, "SELECT pg_advisory_xact_lock(@key)", cancellationToken, ("key", LockKey));
        await Execute(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", cancellationToken);
        var applied = (int)(await Scalar(connection, "SELECT coalesce(max(version), 0) FROM schema_migrations", cancellationToken) ?? 0);
        var steps = Steps(options);
        for (var version = applied + 1; version <= steps.Length; version++)
        {
            await Execute(connection, steps[version - 1], cancellationToken);
            await Execute(connection, "INSERT INTO schema_migrations (version) VALUES (@version)", cancellationToken, ("version", version));
        }

        await CheckIdentityAsync(connection, options, identity, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task CheckIdentityAsync(NpgsqlConnection connection, StorageOptions options, StoreIdentity identity, CancellationToken cancellationToken)
    {
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand("SELECT key, value FROM store_info", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) stored[reader.GetString(0)] = reader.GetString(1);
        }

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

    private static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
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

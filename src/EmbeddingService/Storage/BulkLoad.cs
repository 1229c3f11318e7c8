using System.Diagnostics;
using Npgsql;
using NpgsqlTypes;

namespace EmbeddingService.Storage;

/// <summary>
/// Many vectors written at once, the way pgvector advises for large loads: into an empty store, the indexes are dropped,
/// the rows COPYed straight into the table, and the indexes built once at the end (MAINTENANCE_WORK_MEM, parallel
/// workers only past CVE-2026-3172); into a store that holds items, each batch goes through a staging table and one
/// upsert that leaves unchanged rows alone, the indexes kept. An interrupted load leaves the store without its vector
/// index (searches are then exact, slower but right) until a load finishes: running it again builds it.
/// </summary>
public sealed class BulkLoad
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly StorageOptions _options;
    private readonly string _pgvector;
    private readonly int _dimension;
    private readonly bool _wasEmpty;
    private volatile bool _direct;

    private BulkLoad(NpgsqlDataSource dataSource, StorageOptions options, string pgvector, int dimension, bool empty)
    {
        (_dataSource, _options, _pgvector, _dimension, _wasEmpty, _direct) = (dataSource, options, pgvector, dimension, empty, empty);
    }

    /// <summary>Whether the rows go straight into the table, the indexes built at the end.</summary>
    public bool Direct => _direct;

    /// <summary>Whether <see cref="FinishAsync"/> builds the indexes (the store was empty: they were dropped).</summary>
    public bool BuildsIndexes => _wasEmpty;

    internal static async Task<BulkLoad> BeginAsync(NpgsqlDataSource dataSource, StorageOptions options, string pgvector, int dimension, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var empty = await StorageMigrations.Scalar(connection, "SELECT NOT EXISTS (SELECT 1 FROM items)", cancellationToken) is true;
        if (empty)
        {
            await StorageMigrations.Execute(connection, "DROP INDEX IF EXISTS items_embedding, items_metadata, items_product, items_text", cancellationToken);
        }

        return new BulkLoad(dataSource, options, pgvector, dimension, empty);
    }

    /// <summary>Writes a batch; how many rows were new and how many replaced (the rest were stored already, unchanged).</summary>
    public async Task<(int Created, int Updated)> WriteAsync(IReadOnlyList<VectorRow> rows, string model, string variant,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (_direct)
        {
            try
            {
                await CopyAsync("items", rows, model, variant, null, cancellationToken);
                return (rows.Count, 0);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // Someone else wrote one of these ids meanwhile (a running service): upserts from here on.
                _direct = false;
            }
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await StorageMigrations.Execute(connection,
            $"CREATE TEMP TABLE staging (id text, embedding halfvec({_dimension}), model text, variant text, metadata jsonb, product text, text text) ON COMMIT DROP", cancellationToken);
        await CopyAsync("staging", rows, model, variant, connection, cancellationToken);
        await using var upsert = new NpgsqlCommand("""
            WITH written AS (
                INSERT INTO items (id, embedding, model, variant, metadata, product, text)
                SELECT id, embedding, model, variant, metadata, product, text FROM staging
                ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model = excluded.model, variant = excluded.variant,
                    metadata = excluded.metadata, product = excluded.product, text = excluded.text, updated_at = now()
                WHERE (items.embedding, items.model, items.variant, items.metadata, items.product, items.text)
                    IS DISTINCT FROM (excluded.embedding, excluded.model, excluded.variant, excluded.metadata, excluded.product, excluded.text)
                RETURNING (xmax = 0) AS created)
            SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM written
            """, connection, transaction) { CommandTimeout = 0 };
        await using var reader = await upsert.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var result = ((int)reader.GetInt64(0), (int)reader.GetInt64(1));
        await reader.DisposeAsync();
        await transaction.CommitAsync(cancellationToken);
        return result;
    }

    /// <summary>Builds the indexes that are missing (all of them after a direct load); how long it took, or null when none was.</summary>
    public async Task<TimeSpan?> FinishAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        var missing = (long)(await StorageMigrations.Scalar(connection,
            "SELECT count(*) FROM unnest(ARRAY['items_embedding', 'items_metadata', 'items_product', 'items_text']) AS name WHERE to_regclass(name) IS NULL", cancellationToken))!;
        if (missing == 0) return null;
        var clock = Stopwatch.StartNew();
        // A store that held items when the load began may be in use: its index is built without blocking writes.
        var concurrently = !_wasEmpty;
        await StorageMigrations.Execute(connection, StoreLayout.BuildSettings(_options, _pgvector, local: false), cancellationToken);
        await StorageMigrations.Execute(connection, StoreLayout.MetadataIndex("items", "items_metadata", concurrently), cancellationToken);
        await StorageMigrations.Execute(connection, StoreLayout.ProductIndex("items", "items_product", concurrently), cancellationToken);
        await StorageMigrations.Execute(connection, StoreLayout.TextIndex("items", "items_text", concurrently), cancellationToken);
        await StorageMigrations.Execute(connection, StoreLayout.VectorIndex("items", "items_embedding", _options, _dimension, concurrently), cancellationToken);
        await StorageMigrations.Execute(connection, "ANALYZE items", cancellationToken);
        return clock.Elapsed;
    }

    private async Task CopyAsync(string table, IReadOnlyList<VectorRow> rows, string model, string variant,
        NpgsqlConnection? connection, CancellationToken cancellationToken)
    {
        var own = connection is null ? await _dataSource.OpenConnectionAsync(cancellationToken) : null;
        try
        {
            await using var import = await (connection ?? own)!.BeginBinaryImportAsync($"COPY {table} (id, embedding, model, variant, metadata, product, text) FROM STDIN (FORMAT BINARY)",
                cancellationToken);
            foreach (var row in rows)
            {
                await import.StartRowAsync(cancellationToken);
                await import.WriteAsync(row.Id, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(PostgresVectorStore.HalfWire(row.Vector), NpgsqlDbType.Bytea, cancellationToken);
                await import.WriteAsync(model, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(variant, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(row.MetadataJson, NpgsqlDbType.Jsonb, cancellationToken);
                await PostgresVectorStore.WriteNullable(import, row.Product, NpgsqlDbType.Text, cancellationToken);
                await PostgresVectorStore.WriteNullable(import, row.Text, NpgsqlDbType.Text, cancellationToken);
            }

            await import.CompleteAsync(cancellationToken);
        }
        finally
        {
            if (own is not null) await own.DisposeAsync();
        }
    }
}

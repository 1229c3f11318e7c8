using System.Diagnostics;
using Npgsql;

namespace EmbeddingService.Storage;

/// <summary>
/// Moves a store of an earlier schema version to today's layout while the previous version keeps serving it. From
/// version 2, products and texts: two columns added without a rewrite, their indexes built CONCURRENTLY. From version 1,
/// first the half-precision layout: a new table
/// beside the old one, kept in step by a trigger on the old one, filled by id in batches (each batch locks the rows it
/// copies, so that a concurrent delete cannot be undone), its indexes built CONCURRENTLY (the trigger's writes go on),
/// then the tables swapped in one short transaction. Every step can be run again: an interrupted migration resumes.
/// After the swap, instances of the previous version fail their storage requests until they are replaced (their
/// queries name the old column type): roll out this version right after.
/// </summary>
public static class OnlineMigration
{
    /// <summary>A second migrate command waits for the first rather than racing it.</summary>
    private const long CommandLockKey = StorageMigrations.LockKey + 1;

    private const int DefaultBatchSize = 5_000;

    /// <summary>Runs the migration, reporting progress; returns false when the store is already in today's layout.</summary>
    public static async Task<bool> RunAsync(StorageOptions options, Action<string> progress, CancellationToken cancellationToken, int batchSize = DefaultBatchSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);
        await using var dataSource = NpgsqlDataSource.Create(options.ConnectionString());
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await StorageMigrations.Execute(connection, "SELECT pg_advisory_lock(@key)", cancellationToken, ("key", CommandLockKey));
        await StorageMigrations.Execute(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", cancellationToken);
        var version = await StorageMigrations.VersionAsync(connection, cancellationToken);
        if (version >= StorageMigrations.Current || version < 1)
        {
            // Nothing stored in an older layout: a new or current store is set up by the service at start.
            return false;
        }

        var pgvector = await StorageMigrations.LayoutPgvectorAsync(connection, cancellationToken);
        if (version < 2)
        {
            await MoveToVersion2Async(connection, options, pgvector, progress, batchSize, cancellationToken);
        }

        await AddProductsAndTextsAsync(connection, progress, cancellationToken);
        return true;
    }

    /// <summary>
    /// Version 3: the columns (nullable without a default: no rewrite, a moment's lock), their indexes built CONCURRENTLY,
    /// then the version recorded. The previous version names its columns in every statement, so it serves on meanwhile.
    /// </summary>
    private static async Task AddProductsAndTextsAsync(NpgsqlConnection connection, Action<string> progress, CancellationToken cancellationToken)
    {
        progress("adding products and texts (two columns, then their indexes CONCURRENTLY: writes go on) ...");
        var clock = Stopwatch.StartNew();
        await StorageMigrations.Execute(connection, StoreLayout.ProductAndTextColumns("items"), cancellationToken);
        await BuildIndexAsync(connection, "items_product", StoreLayout.ProductIndex("items", "items_product", concurrently: true), cancellationToken);
        await BuildIndexAsync(connection, "items_text", StoreLayout.TextIndex("items", "items_text", concurrently: true), cancellationToken);
        await BuildIndexAsync(connection, "items_image_sha256", StoreLayout.ImageHashIndex("items", "items_image_sha256", concurrently: true), cancellationToken);
        await StorageMigrations.Execute(connection, StoreLayout.DuplicateTables, cancellationToken);
        await StorageMigrations.MarkAsync(connection, 3, cancellationToken);
        progress($"products and texts added in {clock.Elapsed.TotalSeconds:F0} s");
    }

    /// <summary>Version 1 to 2: the items copied into a table of today's layout beside the old one, then the two swapped.</summary>
    private static async Task MoveToVersion2Async(NpgsqlConnection connection, StorageOptions options, string pgvector, Action<string> progress, int batchSize,
        CancellationToken cancellationToken)
    {
        await PrepareAsync(connection, cancellationToken);
        await CopyAsync(connection, progress, batchSize, cancellationToken);
        progress("building the indexes of the new table (CONCURRENTLY: writes go on) ...");
        var clock = Stopwatch.StartNew();
        await StorageMigrations.Execute(connection, StoreLayout.BuildSettings(options, pgvector, local: false), cancellationToken);
        await BuildIndexAsync(connection, "items_next_metadata", StoreLayout.MetadataIndex("items_next", "items_next_metadata", concurrently: true), cancellationToken);
        await BuildIndexAsync(connection, "items_next_embedding", StoreLayout.VectorIndex("items_next", "items_next_embedding", options, StoreLayout.Version1Dimension, concurrently: true), cancellationToken);
        progress($"indexes built in {clock.Elapsed.TotalSeconds:F0} s; swapping the tables");
        await SwapAsync(connection, cancellationToken);
        await StorageMigrations.Execute(connection, "ALTER TABLE item_thumbnails VALIDATE CONSTRAINT item_thumbnails_id_fkey; DROP TABLE items_v1", cancellationToken);
    }

    /// <summary>The new table, the thumbnails' table, and the trigger that keeps them in step with every write to the old one.</summary>
    private static Task PrepareAsync(NpgsqlConnection connection, CancellationToken cancellationToken) => StorageMigrations.Execute(connection, $$"""
        {{StoreLayout.ItemsTable("items_next", StoreLayout.Version1Dimension).Replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", StringComparison.Ordinal)}};
        {{StoreLayout.ThumbnailsTable}};
        CREATE OR REPLACE FUNCTION items_to_next() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                DELETE FROM items_next WHERE id = OLD.id;
                DELETE FROM item_thumbnails WHERE id = OLD.id;
                RETURN NULL;
            END IF;
            INSERT INTO items_next (id, embedding, model, variant, image_sha256, metadata, created_at, updated_at)
                VALUES (NEW.id, NEW.embedding::halfvec({{StoreLayout.Version1Dimension}}), NEW.model, NEW.variant, NEW.image_sha256, NEW.metadata, NEW.created_at, NEW.updated_at)
                ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model = excluded.model, variant = excluded.variant,
                    image_sha256 = excluded.image_sha256, metadata = excluded.metadata, updated_at = excluded.updated_at;
            IF NEW.thumbnail IS NULL THEN
                DELETE FROM item_thumbnails WHERE id = NEW.id;
            ELSE
                INSERT INTO item_thumbnails (id, bytes, content_type) VALUES (NEW.id, NEW.thumbnail, coalesce(NEW.thumbnail_type, 'image/jpeg'))
                    ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, content_type = excluded.content_type;
            END IF;
            RETURN NULL;
        END
        $body$;
        DROP TRIGGER IF EXISTS items_to_next ON items;
        CREATE TRIGGER items_to_next AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION items_to_next();
        """, cancellationToken);

    /// <summary>
    /// Copies the items in id order, a batch per transaction. A row the trigger already wrote is newer than the batch's
    /// copy (DO NOTHING keeps it); FOR SHARE makes a concurrent delete wait for the batch, so its trigger runs after it.
    /// </summary>
    private static async Task CopyAsync(NpgsqlConnection connection, Action<string> progress, int batchSize, CancellationToken cancellationToken)
    {
        var total = (long)(await StorageMigrations.Scalar(connection, "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'items'::regclass", cancellationToken) ?? 0L);
        var after = string.Empty;
        long copied = 0;
        var clock = Stopwatch.StartNew();
        var reported = TimeSpan.Zero;
        while (true)
        {
            await using var command = new NpgsqlCommand($"""
                WITH batch AS (SELECT * FROM items WHERE id > @after ORDER BY id LIMIT {batchSize} FOR SHARE),
                moved AS (
                    INSERT INTO items_next (id, embedding, model, variant, image_sha256, metadata, created_at, updated_at)
                    SELECT id, embedding::halfvec({StoreLayout.Version1Dimension}), model, variant, image_sha256, metadata, created_at, updated_at FROM batch
                    ON CONFLICT (id) DO NOTHING),
                thumbnails AS (
                    INSERT INTO item_thumbnails (id, bytes, content_type)
                    SELECT id, thumbnail, coalesce(thumbnail_type, 'image/jpeg') FROM batch WHERE thumbnail IS NOT NULL
                    ON CONFLICT (id) DO NOTHING)
                SELECT count(*), max(id) FROM batch
                """, connection) { CommandTimeout = 0 };
            command.Parameters.AddWithValue("after", after);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var count = reader.GetInt64(0);
            if (count == 0) break;
            copied += count;
            after = reader.GetString(1);
            if (clock.Elapsed - reported >= TimeSpan.FromSeconds(5))
            {
                reported = clock.Elapsed;
                progress($"copied {copied:N0} of ~{Math.Max(total, copied):N0} items ({copied / clock.Elapsed.TotalSeconds:N0}/s)");
            }
        }

        progress($"copied {copied:N0} items in {clock.Elapsed.TotalSeconds:F0} s");
    }

    /// <summary>A CONCURRENTLY build that was interrupted leaves an invalid index behind: it is dropped and built again.</summary>
    private static async Task BuildIndexAsync(NpgsqlConnection connection, string name, string sql, CancellationToken cancellationToken)
    {
        var invalid = await StorageMigrations.Scalar(connection,
            $"SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass('{name}')", cancellationToken) is true;
        if (invalid) await StorageMigrations.Execute(connection, $"DROP INDEX CONCURRENTLY IF EXISTS {name}", cancellationToken);
        await StorageMigrations.Execute(connection, sql, cancellationToken);
    }

    /// <summary>One short transaction: the old table and its indexes renamed away, the new ones take their names, version 2 recorded.</summary>
    private static async Task SwapAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await StorageMigrations.Execute(connection, "SELECT pg_advisory_xact_lock(@key)", cancellationToken, ("key", StorageMigrations.LockKey));
        await StorageMigrations.Execute(connection, $"""
            LOCK TABLE items IN ACCESS EXCLUSIVE MODE;
            DROP TRIGGER items_to_next ON items;
            DROP FUNCTION items_to_next();
            ALTER TABLE items RENAME TO items_v1;
            ALTER INDEX items_pkey RENAME TO items_v1_pkey;
            ALTER INDEX IF EXISTS items_embedding RENAME TO items_v1_embedding;
            ALTER INDEX IF EXISTS items_metadata RENAME TO items_v1_metadata;
            ALTER TABLE items_next RENAME TO items;
            ALTER INDEX items_next_pkey RENAME TO items_pkey;
            ALTER INDEX items_next_metadata RENAME TO items_metadata;
            ALTER INDEX items_next_embedding RENAME TO items_embedding;
            {StoreLayout.ThumbnailsForeignKey} NOT VALID;
            """, cancellationToken);
        await StorageMigrations.MarkAsync(connection, 2, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }
}

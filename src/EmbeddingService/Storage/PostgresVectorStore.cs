using System.Security.Cryptography;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace EmbeddingService.Storage;

/// <summary>
/// Items in PostgreSQL with pgvector, in <see cref="StoreLayout"/>: half-precision vectors, an HNSW index of their binary
/// codes whose candidates are re-ranked exactly, a GIN index on the metadata, thumbnails in a table of their own.
/// </summary>
/// With a standby (DATABASE_READ_URL), searches and item reads go there and writes to the primary; an instance reads its
/// own writes (until the standby has replayed them, its reads go to the primary); reads fall back to the primary when the
/// standby does not answer, and go on from the standby when the primary does not.
public sealed partial class PostgresVectorStore(NpgsqlDataSource dataSource, NpgsqlDataSource? replica, bool iterativeScans, StoreIdentity identity) : IVectorStore, IAsyncDisposable
{
    /// <summary>After this long, a write of this instance is taken as replayed without asking (replication lag is milliseconds).</summary>
    private static readonly TimeSpan ReadYourWritesWindow = TimeSpan.FromSeconds(60);

    private ulong _lastWriteLsn;
    private long _lastWriteAt;

    private const string Columns = "id, model, variant, image_sha256, metadata::text, created_at, updated_at, " +
        "EXISTS (SELECT 1 FROM item_thumbnails t WHERE t.id = items.id), product, text";

    private const string Upsert = """
        INSERT INTO items (id, embedding, model, variant, image_sha256, metadata, product, text, image_pixels)
        VALUES (@id, @embedding, @model, @variant, @sha, @metadata, @product, @text, @pixels)
        ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model = excluded.model, variant = excluded.variant,
            image_sha256 = excluded.image_sha256, metadata = excluded.metadata, product = excluded.product, text = excluded.text,
            image_pixels = excluded.image_pixels, updated_at = now()
        """;

    public Task<(bool Created, StoredItem Item)> UpsertAsync(NewItem item, CancellationToken cancellationToken) => Guard(async () =>
    {
        ArgumentNullException.ThrowIfNull(item);
        // One statement: the item, then its thumbnail (replaced, or removed when the new version has none).
        await using var command = dataSource.CreateCommand($"""
            WITH item AS ({Upsert} RETURNING id, model, variant, image_sha256, metadata::text AS metadata, created_at, updated_at, product, text, (xmax = 0) AS created),
            removed AS (DELETE FROM item_thumbnails WHERE id = @id AND @thumbnail::bytea IS NULL),
            added AS (
                INSERT INTO item_thumbnails (id, bytes, content_type) SELECT id, @thumbnail, @thumbnail_type FROM item WHERE @thumbnail::bytea IS NOT NULL
                ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, content_type = excluded.content_type)
            SELECT id, model, variant, image_sha256, metadata, created_at, updated_at, @thumbnail::bytea IS NOT NULL, product, text, created FROM item
            """);
        AddItem(command.Parameters, item);
        command.Parameters.AddWithValue("thumbnail", NpgsqlDbType.Bytea, (object?)item.Thumbnail ?? DBNull.Value);
        command.Parameters.AddWithValue("thumbnail_type", NpgsqlDbType.Text, (object?)item.ThumbnailType ?? DBNull.Value);
        (bool, StoredItem) result;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            result = (reader.GetBoolean(10), Read(reader, withEmbedding: false));
        }

        await NoteWriteAsync(cancellationToken);
        return result;
    });

    public Task<int> UpsertManyAsync(IReadOnlyList<NewItem> items, CancellationToken cancellationToken) => Guard(async () =>
    {
        ArgumentNullException.ThrowIfNull(items);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var create = new NpgsqlCommand($"""
            CREATE TEMP TABLE staging (id text, embedding halfvec({identity.Dimension}), model text, variant text, image_sha256 text, metadata jsonb,
                thumbnail bytea, thumbnail_type text, product text, text text, image_pixels bigint) ON COMMIT DROP
            """, connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        await using (var import = await connection.BeginBinaryImportAsync(
            "COPY staging (id, embedding, model, variant, image_sha256, metadata, thumbnail, thumbnail_type, product, text, image_pixels) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var item in items)
            {
                await import.StartRowAsync(cancellationToken);
                await import.WriteAsync(item.Id, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(HalfWire(item.Embedding), NpgsqlDbType.Bytea, cancellationToken);
                await import.WriteAsync(item.Model, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(item.Variant, NpgsqlDbType.Text, cancellationToken);
                await WriteNullable(import, item.ImageSha256, NpgsqlDbType.Text, cancellationToken);
                await import.WriteAsync(item.MetadataJson, NpgsqlDbType.Jsonb, cancellationToken);
                await WriteNullable(import, item.Thumbnail, NpgsqlDbType.Bytea, cancellationToken);
                await WriteNullable(import, item.ThumbnailType, NpgsqlDbType.Text, cancellationToken);
                await WriteNullable(import, item.Product, NpgsqlDbType.Text, cancellationToken);
                await WriteNullable(import, item.Text, NpgsqlDbType.Text, cancellationToken);
                await WriteNullable(import, item.ImagePixels, NpgsqlDbType.Bigint, cancellationToken);
            }

            await import.CompleteAsync(cancellationToken);
        }

        await using var upsert = new NpgsqlCommand("""
            WITH latest AS (SELECT DISTINCT ON (id) * FROM staging),
            item AS (
                INSERT INTO items (id, embedding, model, variant, image_sha256, metadata, product, text, image_pixels)
                SELECT id, embedding, model, variant, image_sha256, metadata, product, text, image_pixels FROM latest
                ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, model = excluded.model, variant = excluded.variant,
                    image_sha256 = excluded.image_sha256, metadata = excluded.metadata, product = excluded.product, text = excluded.text,
                    image_pixels = excluded.image_pixels, updated_at = now()
                RETURNING (xmax = 0) AS created),
            removed AS (DELETE FROM item_thumbnails t USING latest WHERE t.id = latest.id AND latest.thumbnail IS NULL),
            added AS (
                INSERT INTO item_thumbnails (id, bytes, content_type) SELECT id, thumbnail, coalesce(thumbnail_type, 'image/jpeg') FROM latest
                WHERE thumbnail IS NOT NULL
                ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, content_type = excluded.content_type)
            SELECT count(*) FILTER (WHERE created) FROM item
            """, connection, transaction);
        var created = (long)(await upsert.ExecuteScalarAsync(cancellationToken))!;
        await transaction.CommitAsync(cancellationToken);
        await NoteWriteAsync(cancellationToken);
        return (int)created;
    });

    private static void AddItem(NpgsqlParameterCollection parameters, NewItem item)
    {
        parameters.AddWithValue("id", item.Id);
        parameters.AddWithValue("embedding", Half(item.Embedding));
        parameters.AddWithValue("model", item.Model);
        parameters.AddWithValue("variant", item.Variant);
        parameters.AddWithValue("sha", NpgsqlDbType.Text, (object?)item.ImageSha256 ?? DBNull.Value);
        parameters.AddWithValue("metadata", NpgsqlDbType.Jsonb, item.MetadataJson);
        parameters.AddWithValue("product", NpgsqlDbType.Text, (object?)item.Product ?? DBNull.Value);
        parameters.AddWithValue("text", NpgsqlDbType.Text, (object?)item.Text ?? DBNull.Value);
        parameters.AddWithValue("pixels", NpgsqlDbType.Bigint, (object?)item.ImagePixels ?? DBNull.Value);
    }

    /// <summary>The vector in half precision, as the store keeps it.</summary>
    /// <summary>
    /// A vector in halfvec's binary wire format (dimension, a zero, big-endian halves), for COPY: Pgvector's converter
    /// writes half by half through an async state machine, which bounded a bulk load at ~20,000 rows/s on this
    /// project's 2-core machine (docs/decisions.md, import). COPY BINARY hands the bytes to the column's own receive
    /// function, which checks them as for any halfvec.
    /// </summary>
    internal static byte[] HalfWire(ReadOnlySpan<float> vector)
    {
        var wire = new byte[4 + (2 * vector.Length)];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(wire, checked((ushort)vector.Length));
        var halves = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(wire.AsSpan(4));
        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(vector, halves);
        if (BitConverter.IsLittleEndian)
        {
            var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<Half, ushort>(halves);
            System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(bits, bits);
        }

        return wire;
    }

    internal static HalfVector Half(float[] vector)
    {
        var half = new Half[vector.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(vector, half);
        return new HalfVector(half);
    }

    public Task<IReadOnlyDictionary<string, ItemFingerprint>> GetFingerprintsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken) =>
        Guard(async () =>
        {
            await using var command = dataSource.CreateCommand("SELECT id, image_sha256, metadata::text, product, text FROM items WHERE id = ANY(@ids)");
            command.Parameters.AddWithValue("ids", ids.ToArray());
            var found = new Dictionary<string, ItemFingerprint>(StringComparer.Ordinal);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                found[reader.GetString(0)] = new ItemFingerprint(NullableString(reader, 1), reader.GetString(2), NullableString(reader, 3), NullableString(reader, 4));
            }

            return (IReadOnlyDictionary<string, ItemFingerprint>)found;
        });

    private static string? NullableString(NpgsqlDataReader reader, int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

    internal static Task WriteNullable<T>(NpgsqlBinaryImporter import, T? value, NpgsqlDbType type, CancellationToken cancellationToken) =>
        value is null ? import.WriteNullAsync(cancellationToken) : import.WriteAsync(value, type, cancellationToken);

    public Task<StoredItem?> GetAsync(string id, bool withEmbedding, CancellationToken cancellationToken) => ReadAsync(async source =>
    {
        await using var command = source.CreateCommand($"SELECT {Columns}{(withEmbedding ? ", embedding" : string.Empty)} FROM items WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader, withEmbedding) : null;
    }, cancellationToken);

    public Task<Thumbnail?> GetThumbnailAsync(string id, CancellationToken cancellationToken) => ReadAsync(async source =>
    {
        await using var command = source.CreateCommand("SELECT bytes, content_type FROM item_thumbnails WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var bytes = (byte[])reader[0];
        return new Thumbnail(bytes, reader.GetString(1), $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..32]}\"");
    }, cancellationToken);

    public Task<(IReadOnlyList<StoredItem> Items, string? Next)> ListAsync(int limit, string? after, CancellationToken cancellationToken) => ReadAsync(async source =>
    {
        await using var command = source.CreateCommand($"SELECT {Columns} FROM items WHERE @after::text IS NULL OR id > @after ORDER BY id LIMIT @limit");
        command.Parameters.AddWithValue("after", NpgsqlDbType.Text, (object?)after ?? DBNull.Value);
        command.Parameters.AddWithValue("limit", limit + 1);
        var items = new List<StoredItem>(limit + 1);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) items.Add(Read(reader, withEmbedding: false));
        var more = items.Count > limit;
        if (more) items.RemoveAt(limit);
        return ((IReadOnlyList<StoredItem>)items, more ? items[^1].Id : null);
    }, cancellationToken);

    public Task<bool> DeleteAsync(string id, CancellationToken cancellationToken) => Guard(async () =>
    {
        await using var command = dataSource.CreateCommand("DELETE FROM items WHERE id = @id");
        command.Parameters.AddWithValue("id", id);
        var deleted = await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        await NoteWriteAsync(cancellationToken);
        return deleted;
    });

    public async Task<Reachability> PingAsync(CancellationToken cancellationToken) =>
        new(await PingAsync(dataSource, cancellationToken), replica is null ? null : await PingAsync(replica, cancellationToken));

    private static async Task<bool> PingAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = source.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (IsOutage(e))
        {
            return false;
        }
    }

    /// <summary>Where a read goes: the standby if there is one, it answers and it has replayed this instance's last write; else the primary.</summary>
    private async Task<T> ReadAsync<T>(Func<NpgsqlDataSource, Task<T>> read, CancellationToken cancellationToken)
    {
        if (replica is not null && await ReplayedAsync(cancellationToken))
        {
            try
            {
                return await read(replica);
            }
            catch (Exception e) when (IsOutage(e))
            {
                // The standby went away: the primary answers instead (or says it cannot either).
            }
        }

        return await Guard(() => read(dataSource));
    }

    /// <summary>Whether the standby has replayed this instance's last write (asked only within a minute of it).</summary>
    private async Task<bool> ReplayedAsync(CancellationToken cancellationToken)
    {
        var lsn = Interlocked.Read(ref _lastWriteLsn);
        if (lsn == 0 || Environment.TickCount64 - Interlocked.Read(ref _lastWriteAt) > ReadYourWritesWindow.TotalMilliseconds) return true;
        try
        {
            await using var command = replica!.CreateCommand("SELECT coalesce(pg_last_wal_replay_lsn() >= @lsn, true)");
            command.Parameters.AddWithValue("lsn", NpgsqlDbType.PgLsn, new NpgsqlLogSequenceNumber(lsn));
            return await command.ExecuteScalarAsync(cancellationToken) is true;
        }
        catch (Exception e) when (IsOutage(e))
        {
            return false;
        }
    }

    /// <summary>Remembers where the primary's log stood after a write, so this instance's next reads see it.</summary>
    private async Task NoteWriteAsync(CancellationToken cancellationToken)
    {
        if (replica is null) return;
        await using var command = dataSource.CreateCommand("SELECT pg_current_wal_lsn()");
        var lsn = (ulong)(NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(cancellationToken))!;
        ulong seen;
        while ((seen = Interlocked.Read(ref _lastWriteLsn)) < lsn && Interlocked.CompareExchange(ref _lastWriteLsn, lsn, seen) != seen)
        {
        }

        Interlocked.Exchange(ref _lastWriteAt, Environment.TickCount64);
    }

    public async ValueTask DisposeAsync()
    {
        await dataSource.DisposeAsync();
        if (replica is not null) await replica.DisposeAsync();
    }

    /// <summary>Begins a bulk load (<see cref="BulkLoad"/>): into an empty store, the indexes are built after the rows.</summary>
    public Task<BulkLoad> BeginBulkLoadAsync(StorageOptions options, CancellationToken cancellationToken) =>
        BulkLoad.BeginAsync(dataSource, options, PgvectorVersion!, identity.Dimension, cancellationToken);

    /// <summary>Which model's vectors the store holds, and their dimension: what vectors given to it must have.</summary>
    public StoreIdentity Identity => identity;

    /// <summary>
    /// Applies the migrations, checks the store's identity, and opens the store. The vector-mapped data source is built
    /// after the migrations: a data source maps the vector type only if it existed when it first connected.
    /// </summary>
    /// <exception cref="StoreMismatchException">The database holds another model's, variant's or dimension's vectors.</exception>
    /// <exception cref="StoreLayoutException">The store must be migrated first, or pgvector is too old.</exception>
    public static async Task<PostgresVectorStore> OpenAsync(StorageOptions options, StoreIdentity identity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var connectionString = options.ConnectionString();
        var readOnly = false;
        string version;
        try
        {
            await using var plain = NpgsqlDataSource.Create(connectionString);
            await StorageMigrations.ApplyAsync(plain, options, identity, cancellationToken);
            version = await VersionAsync(plain, cancellationToken);
        }
        catch (Exception e) when (IsOutage(e) && options.ReadConnectionString() is { } standby)
        {
            // Only the standby answers: serve reads from it when it holds a current store of this identity.
            await using var plain = NpgsqlDataSource.Create(standby);
            if (!await StorageMigrations.IsCurrentAsync(plain, identity, cancellationToken)) throw;
            version = await VersionAsync(plain, cancellationToken);
            readOnly = true;
        }

        var iterative = System.Version.TryParse(version, out var parsed) && parsed >= new System.Version(0, 8);
        return new PostgresVectorStore(Build(connectionString), options.ReadConnectionString() is { } read ? Build(read) : null, iterative, identity)
        {
            PgvectorVersion = version,
            OpenedReadOnly = readOnly,
        };

        static NpgsqlDataSource Build(string connectionString)
        {
            var builder = new NpgsqlDataSourceBuilder(connectionString);
            builder.UseVector();
            // The store leaves no session state a query could notice (its search settings are local to their
            // transaction, its temporary tables dropped on commit; an index build's memory and worker settings, set for
            // the session, are set again before every build), so a connection back in the pool needs no DISCARD ALL
            // before its next query. Unless the connection string says otherwise, in either spelling Npgsql accepts.
            if (!connectionString.Replace(" ", string.Empty, StringComparison.Ordinal).Contains("NoResetOnClose", StringComparison.OrdinalIgnoreCase))
            {
                builder.ConnectionStringBuilder.NoResetOnClose = true;
            }

            return builder.Build();
        }
    }

    /// <summary>
    /// Opens the store as it is, for commands that read its vectors whatever model wrote them (duplicates, tag): its
    /// recorded identity, migrated as at start.
    /// </summary>
    /// <exception cref="StoreLayoutException">The database holds no store (nothing was ever written to it).</exception>
    public static async Task<PostgresVectorStore> OpenExistingAsync(StorageOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        await using var plain = NpgsqlDataSource.Create(options.ConnectionString());
        var identity = await StorageMigrations.StoredIdentityAsync(plain, cancellationToken)
            ?? throw new StoreLayoutException("The database in DATABASE_URL holds no store yet: nothing has been written to it.");
        return await OpenAsync(options, identity, cancellationToken);
    }

    private static async Task<string> VersionAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Opened while the primary did not answer: reads from the standby; writes answer 503 until the primary is back.</summary>
    public bool OpenedReadOnly { get; private init; }

    /// <summary>The pgvector version of the database, when opened by <see cref="OpenAsync"/>.</summary>
    public string? PgvectorVersion { get; private init; }

    /// <summary>
    /// Outages (503, retried) are what ADO.NET calls transient (<see cref="System.Data.Common.DbException.IsTransient"/>: Npgsql
    /// says so of broken connections, timeouts, a server shutting down or out of connections); anything else is a fault.
    /// </summary>
    internal static bool IsOutage(Exception e) => e is System.Data.Common.DbException { IsTransient: true } or System.Net.Sockets.SocketException or TimeoutException;

    private static async Task<T> Guard<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (IsOutage(e))
        {
            throw new StorageUnavailableException("The database cannot be reached now; retry shortly.", e);
        }
    }

    private static StoredItem Read(NpgsqlDataReader reader, bool withEmbedding) => new(
        reader.GetString(0), reader.GetString(1), reader.GetString(2), NullableString(reader, 3), reader.GetString(4),
        reader.GetDateTime(5), reader.GetDateTime(6), reader.GetBoolean(7), withEmbedding ? Float(reader.GetFieldValue<HalfVector>(10)) : null,
        NullableString(reader, 8), NullableString(reader, 9));

    private static float[] Float(HalfVector vector)
    {
        var half = vector.ToArray();
        var values = new float[half.Length];
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(half, values);
        return values;
    }
}

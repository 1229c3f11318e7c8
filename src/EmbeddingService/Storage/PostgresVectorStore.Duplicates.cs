using Npgsql;
using NpgsqlTypes;

namespace EmbeddingService.Storage;

/// <summary>
/// Duplicates, from the stored vectors alone: each item's near neighbours (through the vector index) are recorded as
/// pairs once it is scanned (on PUT, and by the <c>duplicates</c> command for everything else); groups are read from
/// the pairs and the images' SHA-256, never by decoding an image again.
/// </summary>
public sealed partial class PostgresVectorStore
{
    /// <summary>
    /// Candidates the binary index gives for an item's neighbours. At 1,000,000 catalogue-shaped items, 64 (Immich's
    /// neighbour count) missed 10 % of copies planted within 0.01: the index's search ends in a crowd of codes at
    /// equal Hamming distances before it reaches them; 200 found every one of those (docs/decisions.md, "Duplicates").
    /// </summary>
    internal const int NeighbourCandidates = 200;

    /// <summary>
    /// The stored items within <paramref name="radius"/> of <paramref name="id"/>'s vector (at most
    /// <paramref name="limit"/>, nearest first), recorded as its pairs: the item is then scanned at that radius.
    /// </summary>
    public Task<IReadOnlyList<Neighbour>> ScanAsync(string id, float[] vector, double radius, int limit, CancellationToken cancellationToken) => Guard(async () =>
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var found = await NeighboursAsync(connection, [(id, vector)], radius, limit, cancellationToken);
        await RecordScansAsync(connection, found, radius, cancellationToken);
        return found[0].Neighbours;
    });

    /// <summary>
    /// Scans the next <paramref name="batch"/> items after <paramref name="after"/> (in id order) that were never
    /// scanned, changed since, or were scanned at a smaller radius; returns them (empty at the end). Workers take
    /// shard <paramref name="shard"/> of <paramref name="shards"/> (by a hash of the id), so they never scan the same item.
    /// </summary>
    public Task<IReadOnlyList<ScannedItem>> ScanNextAsync(string after, int batch, double radius, CancellationToken cancellationToken) =>
        ScanNextAsync(after, batch, radius, 0, 1, cancellationToken);

    public Task<IReadOnlyList<ScannedItem>> ScanNextAsync(string after, int batch, double radius, int shard, int shards, CancellationToken cancellationToken) => Guard(async () =>
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var items = new List<(string Id, float[] Vector, DateTime Version)>(batch);
        await using (var command = new NpgsqlCommand("""
            SELECT i.id, i.embedding, i.updated_at FROM items i LEFT JOIN duplicate_scans s ON s.id = i.id
            WHERE i.id > @after AND (s.id IS NULL OR s.item_version < i.updated_at OR s.radius < @radius::real)
                AND (@shards = 1 OR abs(hashtext(i.id) % @shards) = @shard)
            ORDER BY i.id LIMIT @batch
            """, connection))
        {
            command.Parameters.AddWithValue("shard", shard);
            command.Parameters.AddWithValue("shards", shards);
            command.Parameters.AddWithValue("after", after);
            command.Parameters.AddWithValue("radius", radius);
            command.Parameters.AddWithValue("batch", batch);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) items.Add((reader.GetString(0), Float(reader.GetFieldValue<Pgvector.HalfVector>(1)), reader.GetDateTime(2)));
        }

        if (items.Count == 0) return (IReadOnlyList<ScannedItem>)[];
        var found = await NeighboursAsync(connection, [.. items.Select(i => (i.Id, i.Vector))], radius, NeighbourCandidates, cancellationToken);
        for (var i = 0; i < found.Count; i++) found[i] = found[i] with { Version = items[i].Version };
        await RecordScansAsync(connection, found, radius, cancellationToken);
        return found;
    });

    public Task<IReadOnlyList<ScannedItem>> FindNeighboursAsync(IReadOnlyList<(string Id, float[] Vector)> items, double radius, int limit, CancellationToken cancellationToken) =>
        Guard(async () =>
        {
            ArgumentNullException.ThrowIfNull(items);
            if (items.Count == 0) return (IReadOnlyList<ScannedItem>)[];
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            return await NeighboursAsync(connection, items, radius, limit, cancellationToken);
        });

    /// <summary>Each vector's neighbours within the radius, by the binary index (one batch, one round trip) and re-ranked exactly.</summary>
    private async Task<List<ScannedItem>> NeighboursAsync(NpgsqlConnection connection, IReadOnlyList<(string Id, float[] Vector)> items, double radius, int limit,
        CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT set_config('hnsw.ef_search', '{Math.Max(limit, NeighbourCandidates)}', true)"));
        foreach (var (id, vector) in items)
        {
            var command = new NpgsqlBatchCommand($"""
                SELECT id, distance FROM (
                    SELECT id, {StoreLayout.ExactOrder(identity.Dimension)} AS distance
                    FROM (SELECT id, embedding FROM items ORDER BY {StoreLayout.BinaryOrder(identity.Dimension)} LIMIT {Math.Max(limit, NeighbourCandidates)}) candidates
                    WHERE id <> @self) near
                WHERE distance <= @radius ORDER BY distance, id LIMIT @limit
                """);
            command.Parameters.AddWithValue("query", Half(vector));
            command.Parameters.AddWithValue("self", id);
            command.Parameters.AddWithValue("radius", radius);
            command.Parameters.AddWithValue("limit", limit);
            batch.BatchCommands.Add(command);
        }

        var found = new List<ScannedItem>(items.Count);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        foreach (var (id, _) in items)
        {
            await reader.NextResultAsync(cancellationToken);
            var neighbours = new List<Neighbour>();
            while (await reader.ReadAsync(cancellationToken)) neighbours.Add(new Neighbour(reader.GetString(0), reader.GetDouble(1)));
            found.Add(new ScannedItem(id, neighbours, null));
        }

        return found;
    }

    /// <summary>Replaces the scanned items' pairs with those found, and records the scans (at the item's version read, or its current one).</summary>
    private static async Task RecordScansAsync(NpgsqlConnection connection, IReadOnlyList<ScannedItem> scanned, double radius, CancellationToken cancellationToken)
    {
        var ids = scanned.Select(s => s.Id).ToArray();
        var pairs = scanned.SelectMany(s => s.Neighbours.Select(n => (A: string.CompareOrdinal(s.Id, n.Id) < 0 ? s.Id : n.Id,
            B: string.CompareOrdinal(s.Id, n.Id) < 0 ? n.Id : s.Id, n.Distance))).DistinctBy(p => (p.A, p.B)).ToList();
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("DELETE FROM item_pairs WHERE a = ANY(@ids) OR b = ANY(@ids)") { Parameters = { new("ids", ids) } },
                new NpgsqlBatchCommand("""
                    INSERT INTO item_pairs (a, b, distance)
                    SELECT p.a, p.b, p.distance FROM unnest(@a::text[], @b::text[], @distance::real[]) AS p (a, b, distance)
                    WHERE EXISTS (SELECT 1 FROM items WHERE id = p.a) AND EXISTS (SELECT 1 FROM items WHERE id = p.b)
                    ON CONFLICT (a, b) DO UPDATE SET distance = excluded.distance
                    """)
                {
                    Parameters =
                    {
                        new("a", pairs.Select(p => p.A).ToArray()),
                        new("b", pairs.Select(p => p.B).ToArray()),
                        new("distance", pairs.Select(p => (float)p.Distance).ToArray()),
                    },
                },
                new NpgsqlBatchCommand("""
                    INSERT INTO duplicate_scans (id, item_version, radius)
                    SELECT i.id, coalesce(s.version, i.updated_at), @radius::real
                    FROM unnest(@ids::text[], @versions::timestamptz[]) AS s (id, version) JOIN items i ON i.id = s.id
                    ON CONFLICT (id) DO UPDATE SET item_version = excluded.item_version, radius = excluded.radius
                    """)
                {
                    Parameters =
                    {
                        new("ids", ids),
                        new("versions", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = scanned.Select(s => s.Version).ToArray() },
                        new("radius", radius),
                    },
                },
            },
        };
        await batch.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// The catalogue's duplicate groups within <paramref name="maxDistance"/>, a page at a time in group order:
    /// exact copies (the same image SHA-256) are groups of their own; near groups are the connected components of the
    /// pairs within the distance between items of different images, an exact set taking part through its keeper.
    /// The keeper is the largest image, then the oldest item, then the first id.
    /// </summary>
    public Task<DuplicatePage> DuplicatesAsync(double maxDistance, int limit, string? after, CancellationToken cancellationToken) => ReadAsync(async source =>
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        var exactSets = new List<(string Sha, List<string> Ids)>();
        var pairs = new List<(string A, string B)>();
        long unscanned;
        await using (var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    SELECT image_sha256, array_agg(id ORDER BY id) FROM items WHERE image_sha256 IS NOT NULL GROUP BY image_sha256 HAVING count(*) > 1
                    """),
                new NpgsqlBatchCommand("""
                    SELECT p.a, p.b FROM item_pairs p JOIN items ia ON ia.id = p.a JOIN items ib ON ib.id = p.b
                    WHERE p.distance <= @distance::real AND (ia.image_sha256 IS NULL OR ib.image_sha256 IS NULL OR ia.image_sha256 <> ib.image_sha256)
                    """) { Parameters = { new("distance", maxDistance) } },
                new NpgsqlBatchCommand("""
                    SELECT count(*) FROM items i LEFT JOIN duplicate_scans s ON s.id = i.id
                    WHERE s.id IS NULL OR s.item_version < i.updated_at OR s.radius < @distance::real
                    """) { Parameters = { new("distance", maxDistance) } },
            },
        })
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) exactSets.Add((reader.GetString(0), [.. reader.GetFieldValue<string[]>(1)]));
            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken)) pairs.Add((reader.GetString(0), reader.GetString(1)));
            await reader.NextResultAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            unscanned = reader.GetInt64(0);
        }

        var involved = exactSets.SelectMany(s => s.Ids).Concat(pairs.SelectMany(p => new[] { p.A, p.B })).Distinct(StringComparer.Ordinal).ToArray();
        var facts = await KeepFactsAsync(connection, involved, cancellationToken);
        var groups = DuplicateGroups.Build(exactSets, pairs, facts);
        var page = groups.Where(g => after is null || string.CompareOrdinal(g.Group, after) > 0).Take(limit + 1).ToList();
        var next = page.Count > limit ? page[limit - 1].Group : null;
        if (page.Count > limit) page.RemoveAt(limit);
        return new DuplicatePage(await WithDistancesAsync(connection, page, cancellationToken), next, unscanned);
    }, cancellationToken);

    /// <summary>What picks the keeper: each item's image size (null for a vector given as is) and age.</summary>
    private static async Task<Dictionary<string, (long Pixels, DateTime Created)>> KeepFactsAsync(NpgsqlConnection connection, string[] ids, CancellationToken cancellationToken)
    {
        var facts = new Dictionary<string, (long, DateTime)>(ids.Length, StringComparer.Ordinal);
        if (ids.Length == 0) return facts;
        await using var command = new NpgsqlCommand("SELECT id, coalesce(image_pixels, 0), created_at FROM items WHERE id = ANY(@ids)", connection);
        command.Parameters.AddWithValue("ids", ids);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) facts[reader.GetString(0)] = (reader.GetInt64(1), reader.GetDateTime(2));
        return facts;
    }

    /// <summary>Each item's cosine distance to its group's keeper, from the stored vectors (one round trip for the page).</summary>
    private static async Task<IReadOnlyList<DuplicateGroup>> WithDistancesAsync(NpgsqlConnection connection, List<DuplicateGroup> page, CancellationToken cancellationToken)
    {
        if (page.Count == 0) return page;
        await using var batch = new NpgsqlBatch(connection);
        foreach (var group in page)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                SELECT i.id, i.embedding <=> k.embedding FROM items i, items k WHERE k.id = @keep AND i.id = ANY(@ids)
                """) { Parameters = { new("keep", group.Keep), new("ids", group.Items.Select(i => i.Id).ToArray()) } });
        }

        var measured = new List<DuplicateGroup>(page.Count);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        foreach (var group in page)
        {
            var distances = new Dictionary<string, double>(StringComparer.Ordinal);
            while (await reader.ReadAsync(cancellationToken)) distances[reader.GetString(0)] = Math.Max(0, reader.GetDouble(1));
            await reader.NextResultAsync(cancellationToken);
            measured.Add(group with
            {
                Items = [.. group.Items.Select(i => i with { Distance = distances.GetValueOrDefault(i.Id) }).OrderBy(i => i.Id == group.Keep ? 0 : 1).ThenBy(i => i.Distance).ThenBy(i => i.Id, StringComparer.Ordinal)],
            });
        }

        return measured;
    }

    /// <summary>Deletes the items named, in one transaction; returns those that existed (and are gone now).</summary>
    public Task<IReadOnlyList<string>> DeleteManyAsync(IReadOnlyList<string> keep, IReadOnlyList<string> remove, CancellationToken cancellationToken) => Guard(async () =>
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var kept = new NpgsqlCommand("SELECT array_agg(id) FROM items WHERE id = ANY(@keep)", connection, transaction))
        {
            kept.Parameters.AddWithValue("keep", keep.ToArray());
            var found = await kept.ExecuteScalarAsync(cancellationToken) as string[] ?? [];
            var missing = keep.Except(found, StringComparer.Ordinal).ToList();
            if (missing.Count > 0) throw new KeepMissingException(missing);
        }

        await using var command = new NpgsqlCommand("DELETE FROM items WHERE id = ANY(@delete) RETURNING id", connection, transaction);
        command.Parameters.AddWithValue("delete", remove.ToArray());
        var deleted = new List<string>(remove.Count);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) deleted.Add(reader.GetString(0));
        }

        await transaction.CommitAsync(cancellationToken);
        await NoteWriteAsync(cancellationToken);
        return (IReadOnlyList<string>)[.. deleted.Order(StringComparer.Ordinal)];
    });
}

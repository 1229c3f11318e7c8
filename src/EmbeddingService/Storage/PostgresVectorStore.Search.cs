using Npgsql;
using NpgsqlTypes;

namespace EmbeddingService.Storage;

/// <summary>Search: by vector (binary index, exact re-rank), by the items' words (full text), or both fused; by item or by product.</summary>
public sealed partial class PostgresVectorStore
{
    /// <summary>Reciprocal rank fusion's constant: a result's share is 1 / (60 + its rank) in each list (Cormack et al., as Marqo and pgvector's examples).</summary>
    internal const int FusionConstant = 60;

    /// <summary>
    /// The ranked items of a search, best first: at most k, or, grouped, at most GroupSize of each product and enough to
    /// hold k products when k products have a matching item (<see cref="SearchGroups"/> cuts them into products).
    /// A vector search takes candidates by the binary index and re-ranks them by exact cosine on the stored vectors; a
    /// filter that matches at most <see cref="ExactSearchLimit"/> rows is searched exactly (the GIN index finds them);
    /// a wider one through the index with the filter applied during the scan (pgvector >= 0.8's iterative scans), and
    /// if that scan ends short, exactly: a filtered search returns k results whenever k items match.
    /// </summary>
    public Task<IReadOnlyList<SearchHit>> SearchAsync(SearchQuery query, CancellationToken cancellationToken) => SearchAsync(query, null, cancellationToken);

    /// <summary>
    /// As <see cref="SearchAsync(SearchQuery, CancellationToken)"/>, the query's vector still being computed: a hybrid
    /// search reads its words on a connection of its own meanwhile (the text tower takes longer than either list).
    /// </summary>
    public Task<IReadOnlyList<SearchHit>> SearchAsync(SearchQuery query, Task<float[]?>? pendingVector, CancellationToken cancellationToken) => ReadAsync(async source =>
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Mode == SearchMode.Keyword)
        {
            await using var connection = await source.OpenConnectionAsync(cancellationToken);
            return (IReadOnlyList<SearchHit>)await KeywordListAsync(connection, query, Limit(query), windowed: query.Grouped, cancellationToken);
        }

        if (query.Mode == SearchMode.Vector)
        {
            if (pendingVector is not null) query = query with { Vector = await pendingVector };
            await using var connection = await source.OpenConnectionAsync(cancellationToken);
            return await VectorListAsync(connection, query, Limit(query), windowed: query.Grouped, cancellationToken);
        }

        var depth = FusionDepth(query);
        var byWords = WordsAsync(source, query, depth, cancellationToken);
        try
        {
            if (pendingVector is not null) query = query with { Vector = await pendingVector };
            await using var connection = await source.OpenConnectionAsync(cancellationToken);
            var byVector = await VectorListAsync(connection, query, depth, windowed: false, cancellationToken);
            return Fuse(byVector, await byWords, query.Grouped ? int.MaxValue : query.K);
        }
        finally
        {
            // On a failure before it was awaited, the words' search still ends (and gives its connection back) first.
            await byWords.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }, cancellationToken);

    private static async Task<List<SearchHit>> WordsAsync(NpgsqlDataSource source, SearchQuery query, int depth, CancellationToken cancellationToken)
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        return await KeywordListAsync(connection, query, depth, windowed: false, cancellationToken);
    }

    /// <summary>Rows a list gives: k items, or, grouped, up to k x GroupSize (the k best products, at most GroupSize items each).</summary>
    private static int Limit(SearchQuery query) => query.K * (query.GroupSize ?? 1);

    /// <summary>
    /// How deep each list of a hybrid search goes: 100 items (10 x the usual k: an item that is 100th in one list and
    /// absent from the other scores 1/160, below anything in the top ten of both), or k x GroupSize when deeper.
    /// </summary>
    internal static int FusionDepth(SearchQuery query) => Math.Min(1000, Math.Max(100, Limit(query)));

    /// <summary>Candidates the binary index gives for re-ranking: at 1,000,000 items, 100 gave recall@10 0.943 and 200 gave 0.957 (docs/decisions.md).</summary>
    internal static int Candidates(int k) => Math.Clamp(k * 20, 200, 1000);

    /// <summary>
    /// Candidates for a list of <paramref name="limit"/> rows. Grouped: 1,000 (the index's most), since the k best
    /// products' best items are near-ties that the binary codes order coarsely: at 1,000,000 items in 4-photo products,
    /// the products of 400 candidates held 0.85-0.87 of the exact top 10 (through the index, or by exact Hamming
    /// distance alike), of 1,000 candidates 0.955 (docs/decisions.md, "Search by product").
    /// </summary>
    internal static int Candidates(SearchQuery query, int limit) => query.Grouped ? 1000 : Math.Max(Candidates(query.K), Math.Min(limit, 1000));

    /// <summary>
    /// Candidates when a wide filter is applied during the index scan. Each candidate costs ~items / matches rows visited
    /// (a heap fetch each), and the depth recall needs grows with the store: with a 10 % filter, 100 candidates gave
    /// recall@10 0.984 at 200,000 items (SQL 6-8 ms instead of 13-17 with 200) but 0.917 at 1,000,000, where 200 gave
    /// 0.957 (docs/decisions.md, "Filtered search by class"). So k x 10 at 200,000 items, growing with the square root
    /// of the store's size; <paramref name="items"/> 0 (unknown) takes the unfiltered depth.
    /// </summary>
    internal static int FilteredCandidates(SearchQuery query, int limit, double items)
    {
        if (query.Grouped) return 1000;
        var depth = items <= 0 ? Candidates(query.K) : (int)Math.Ceiling(query.K * 10 * Math.Sqrt(Math.Max(1, items / 200_000)));
        return Math.Max(Math.Clamp(depth, 100, 1000), Math.Min(limit, 1000));
    }

    /// <summary>The table's size as the planner last estimated it (pg_class.reltuples), read with a wide filter's estimate.</summary>
    private double _itemsEstimate;

    private async Task<IReadOnlyList<SearchHit>> VectorListAsync(NpgsqlConnection connection, SearchQuery query, int limit, bool windowed, CancellationToken cancellationToken)
    {
        var filtered = query.FilterJson is not null || query.ExcludeIds is { Count: > 0 };
        var exact = query.FilterJson is not null && await IsSelectiveAsync(connection, null, query.FilterJson, cancellationToken);
        var hits = await VectorOnceAsync(connection, query, limit, windowed, filtered, exact, cancellationToken);
        var full = windowed ? hits.Select(h => (h.Product, h.Product is null ? h.Id : null)).Distinct().Count() >= query.K : hits.Count >= limit;
        if (!exact && !full)
        {
            // The index's candidates ran out before the list was full (a filter, a small store, products with many photos).
            hits = await VectorOnceAsync(connection, query, limit, windowed, filtered, exact: true, cancellationToken);
        }

        return [.. hits.TakeWhile(h => query.MinScore is not { } min || h.Score >= min)];
    }

    private const string Where = """
        WHERE (@filter::jsonb IS NULL OR metadata @> @filter::jsonb) AND id <> ALL(@exclude)
        """;

    /// <summary>
    /// One vector search: its settings and its query in one batch, so one round trip. A batch runs in one implicit
    /// transaction (one Sync), so the settings, local to it, hold for the query and end with it; an explicit BEGIN,
    /// settings, query and COMMIT took three round trips (docs/decisions.md). Windowed, each product keeps its
    /// GroupSize best items (an item without a product is a product of its own).
    /// </summary>
    private async Task<List<SearchHit>> VectorOnceAsync(NpgsqlConnection connection, SearchQuery query, int limit, bool windowed, bool filtered, bool exact,
        CancellationToken cancellationToken)
    {
        var candidates = query.FilterJson is not null ? FilteredCandidates(query, limit, Volatile.Read(ref _itemsEstimate)) : Candidates(query, limit);
        var settings = exact
            ? "SELECT set_config('enable_indexscan', 'off', true)"
            : $"SELECT set_config('hnsw.ef_search', '{candidates}', true)" +
              (filtered && iterativeScans ? ", set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.max_scan_tuples', '50000', true)" : string.Empty) +
              // A filter that matches many rows makes the planner prefer the metadata index and an exact sort of every
              // match (~90 ms at 100,000 of 1,000,000 rows, measured): here the vector index is meant, the filter applied
              // during its scan.
              (filtered ? ", set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)" : string.Empty);
        var order = StoreLayout.ExactOrder(identity.Dimension);
        // Exact: every item the filter lets through; else the binary index's candidates.
        var from = exact
            ? $"items found {Where}"
            : $"(SELECT id, product, embedding, metadata FROM items {Where} ORDER BY {StoreLayout.BinaryOrder(identity.Dimension)} LIMIT {candidates}) found";
        var sql = windowed
            ? $"""
                SELECT id, 1 - s, metadata::text, EXISTS (SELECT 1 FROM item_thumbnails t WHERE t.id = ranked.id), product
                FROM {Grouped($"SELECT id, product, metadata, {order} AS s FROM {from}", descending: false)}
                """
            : $"""
                SELECT id, 1 - ({order}), metadata::text, EXISTS (SELECT 1 FROM item_thumbnails t WHERE t.id = found.id), product
                FROM {from} ORDER BY {order}, id LIMIT @limit
                """;
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddWithValue("query", Half(query.Vector!));
        AddCommon(command.Parameters, query, limit);
        await using var batch = new NpgsqlBatch(connection) { BatchCommands = { new NpgsqlBatchCommand(settings), command } };
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await reader.NextResultAsync(cancellationToken);
        return await ReadHitsAsync(reader, limit, vectorRanks: true, cancellationToken);
    }

    /// <summary>
    /// Items whose text holds the words (web-search syntax, every word required), ranked by <c>ts_rank_cd</c> (cover
    /// density: the words close together rank higher), through the text index.
    /// </summary>
    private static async Task<List<SearchHit>> KeywordListAsync(NpgsqlConnection connection, SearchQuery query, int limit, bool windowed, CancellationToken cancellationToken)
    {
        var scored = $"""
            SELECT id, product, metadata, ts_rank_cd({StoreLayout.TextVector}, words) AS s
            FROM items, {StoreLayout.TextQuery} words
            {Where} AND text IS NOT NULL AND {StoreLayout.TextVector} @@ words
            """;
        var sql = $"""
            SELECT id, s, metadata::text, EXISTS (SELECT 1 FROM item_thumbnails t WHERE t.id = ranked.id), product
            FROM {(windowed ? Grouped(scored, descending: true) : $"({scored}) ranked ORDER BY s DESC, id LIMIT @limit")}
            """;
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("words", NpgsqlDbType.Text, query.Words ?? string.Empty);
        AddCommon(command.Parameters, query, limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await ReadHitsAsync(reader, limit, vectorRanks: false, cancellationToken);
    }

    /// <summary>
    /// The rows of the k best products of <paramref name="scored"/> (id, product, metadata, s), each product's
    /// GroupSize best items, best first: a product ranks by its best item; an item without a product is a product of
    /// its own (partitioned by its id).
    /// </summary>
    private static string Grouped(string scored, bool descending)
    {
        var direction = descending ? "DESC" : "ASC";
        return $"""
            (SELECT *, dense_rank() OVER (ORDER BY best {direction}, product, lone) AS product_place FROM (
                SELECT id, product, metadata, s, CASE WHEN product IS NULL THEN id END AS lone,
                    row_number() OVER (PARTITION BY product, CASE WHEN product IS NULL THEN id END ORDER BY s {direction}, id) AS place,
                    {(descending ? "max" : "min")}(s) OVER (PARTITION BY product, CASE WHEN product IS NULL THEN id END) AS best
                FROM ({scored}) scored) grouped
             WHERE place <= @group_size) ranked
            WHERE product_place <= @k ORDER BY s {direction}, id
            """;
    }

    private static void AddCommon(NpgsqlParameterCollection parameters, SearchQuery query, int limit)
    {
        parameters.AddWithValue("filter", NpgsqlDbType.Jsonb, (object?)query.FilterJson ?? DBNull.Value);
        parameters.AddWithValue("exclude", NpgsqlDbType.Array | NpgsqlDbType.Text, query.ExcludeIds?.ToArray() ?? []);
        parameters.AddWithValue("group_size", query.GroupSize ?? 1);
        parameters.AddWithValue("k", query.K);
        parameters.AddWithValue("limit", limit);
    }

    private static async Task<List<SearchHit>> ReadHitsAsync(NpgsqlDataReader reader, int limit, bool vectorRanks, CancellationToken cancellationToken)
    {
        var hits = new List<SearchHit>(Math.Min(limit, 1000));
        while (await reader.ReadAsync(cancellationToken))
        {
            var rank = hits.Count + 1;
            hits.Add(new SearchHit(reader.GetString(0), reader.GetDouble(1), reader.GetString(2), reader.GetBoolean(3), NullableString(reader, 4),
                vectorRanks ? rank : null, vectorRanks ? null : rank));
        }

        return hits;
    }

    /// <summary>
    /// Reciprocal rank fusion: each item scores the sum over the lists it is in of 1 / (60 + its rank there); best
    /// first, ties to the better keyword rank: the first match of the words (a SKU, say) and the nearest vector tie at
    /// 1/61, and an exact word is the stronger evidence (docs/decisions.md). Each hit keeps both ranks (null where absent).
    /// </summary>
    internal static IReadOnlyList<SearchHit> Fuse(IReadOnlyList<SearchHit> byVector, IReadOnlyList<SearchHit> byWords, int take)
    {
        var fused = new Dictionary<string, SearchHit>(byVector.Count + byWords.Count, StringComparer.Ordinal);
        foreach (var hit in byVector) fused[hit.Id] = hit with { Score = 1.0 / (FusionConstant + hit.VectorRank!.Value) };
        foreach (var hit in byWords)
        {
            var share = 1.0 / (FusionConstant + hit.KeywordRank!.Value);
            fused[hit.Id] = fused.TryGetValue(hit.Id, out var seen)
                ? seen with { Score = seen.Score + share, KeywordRank = hit.KeywordRank }
                : hit with { Score = share };
        }

        return [.. fused.Values
            .OrderByDescending(h => h.Score)
            .ThenBy(h => h.KeywordRank ?? int.MaxValue)
            .ThenBy(h => h.VectorRank ?? int.MaxValue)
            .ThenBy(h => h.Id, StringComparer.Ordinal)
            .Take(take)];
    }

    /// <summary>Up to this many matching rows (counted) a filtered search is exact (a few ms); past it, see <see cref="WideExactAsync"/>.</summary>
    private const int ExactSearchLimit = 2_000;

    /// <summary>How long a filter's "selective or not" is remembered: it picks a strategy only, and filters repeat.</summary>
    private static readonly TimeSpan SelectivityLifetime = TimeSpan.FromSeconds(30);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (bool Selective, long Until)> _selectivity = new(StringComparer.Ordinal);

    /// <summary>
    /// Whether the filter is searched exactly: the planner estimates it below the crossover (<see cref="WideExactAsync"/>),
    /// or at most <see cref="ExactSearchLimit"/> rows match (a capped count); remembered for a while.
    /// </summary>
    private async Task<bool> IsSelectiveAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string filter, CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        if (_selectivity.TryGetValue(filter, out var known) && known.Until > now)
        {
            return known.Selective;
        }

        // The planner's estimate first (no row is read): the capped count only decides when the estimate says "wide",
        // to catch a filter the statistics overrate. Counting first cost a first-seen 1 % filter at 1,000,000 items
        // ~5-9 ms for an answer (exact) the estimate already gave.
        var selective = await WideExactAsync(connection, transaction, filter, cancellationToken)
            || await CountUpToAsync(connection, transaction, filter, ExactSearchLimit + 1, cancellationToken) <= ExactSearchLimit;
        if (_selectivity.Count > 10_000)
        {
            _selectivity.Clear();
        }

        _selectivity[filter] = (selective, now + (long)SelectivityLifetime.TotalMilliseconds);
        return selective;
    }

    /// <summary>
    /// Whether a filter matching more than <see cref="ExactSearchLimit"/> rows is still cheaper searched exactly. Through
    /// the index, a filter unrelated to the query makes the scan visit ~candidates x items / matches rows (each a heap
    /// fetch, ~12 us), while the exact search reads every match (~4 us): measured at 1,000,000 items, a 1 % filter took
    /// 250 ms through the index and 43 ms exactly, a 10 % one 60 ms through the index and 730 ms exactly
    /// (docs/decisions.md). The two cross near sqrt(600 x items) matches, taken from the planner's estimate (free: no
    /// row is read), with the table's size from its statistics.
    /// </summary>
    private async Task<bool> WideExactAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string filter, CancellationToken cancellationToken)
    {
        await using var estimate = new NpgsqlCommand("""
            SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = 'items'::regclass;
            EXPLAIN (FORMAT JSON) SELECT 1 FROM items WHERE metadata @> @filter::jsonb
            """, connection, transaction);
        estimate.Parameters.AddWithValue("filter", NpgsqlDbType.Jsonb, filter);
        await using var reader = await estimate.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var items = reader.GetDouble(0);
        Volatile.Write(ref _itemsEstimate, items);
        await reader.NextResultAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        using var plan = System.Text.Json.JsonDocument.Parse(reader.GetString(0));
        var matches = plan.RootElement[0].GetProperty("Plan").GetProperty("Plan Rows").GetDouble();
        return matches <= Math.Clamp(Math.Sqrt(600 * items), ExactSearchLimit, 100_000);
    }

    private static async Task<long> CountUpToAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string filter, int cap, CancellationToken cancellationToken)
    {
        await using var count = new NpgsqlCommand("SELECT count(*) FROM (SELECT 1 FROM items WHERE metadata @> @filter::jsonb LIMIT @cap) matching", connection, transaction);
        count.Parameters.AddWithValue("filter", NpgsqlDbType.Jsonb, filter);
        count.Parameters.AddWithValue("cap", cap);
        return (long)(await count.ExecuteScalarAsync(cancellationToken))!;
    }
}

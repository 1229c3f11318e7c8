using System.Numerics.Tensors;
using EmbeddingService.Storage;
using EmbeddingService.Tests.Support;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// A store written in the first layout (vector(512), thumbnails inline, HNSW on the full vectors) is moved to today's,
/// keeping every item, its metadata and thumbnail, and giving the same search results (recall@10 >= 0.99 of what the
/// first layout answered): in place at start when small, online by the migrate command when large, with writes going on.
/// </summary>
public sealed class MigrationTests
{
    private const int Items = 2_000;
    private static readonly StoreIdentity Identity = new("CLIP-ViT-B/32", "fp32", 512);

    [DatabaseFact]
    public async Task A_small_store_of_the_first_layout_is_moved_at_start_with_every_item_and_the_same_results()
    {
        await using var database = await TestDatabase.CreateAsync();
        var options = new StorageOptions { DatabaseUrl = database.Url };
        var vectors = await WriteFirstLayoutAsync(options);
        var before = await SearchFirstLayoutAsync(options, vectors);

        await using var store = await PostgresVectorStore.OpenAsync(options, Identity, CancellationToken.None);
        Assert.Equal("halfvec", await database.ScalarAsync<string>("SELECT udt_name FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'embedding'"));
        await AssertEverythingKeptAsync(database, store, vectors, deleted: []);
        await AssertSameResultsAsync(store, vectors, before);
    }

    [DatabaseFact]
    public async Task A_large_store_is_left_to_migrate_which_moves_it_online_while_the_old_version_writes()
    {
        await using var database = await TestDatabase.CreateAsync();
        var options = new StorageOptions { DatabaseUrl = database.Url, MigrateInlineLimit = Items / 4 };
        var vectors = await WriteFirstLayoutAsync(options);
        var before = await SearchFirstLayoutAsync(options, vectors);

        // At start the service leaves it as it is and says what to run.
        var refused = await Assert.ThrowsAsync<StoreLayoutException>(() => PostgresVectorStore.OpenAsync(options, Identity, CancellationToken.None));
        Assert.Contains("migrate", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, await database.ScalarAsync<int>("SELECT max(version) FROM schema_migrations"));

        // The previous version keeps writing while migrate copies in small batches: new items, replaced metadata, deletions.
        await using var dataSource = VectorSource(options);
        var migration = Task.Run(() => OnlineMigration.RunAsync(options, _ => { }, CancellationToken.None, batchSize: 50));
        var deleted = new HashSet<string>();
        var written = 0;
        while (!migration.IsCompleted)
        {
            await ExecuteAsync(dataSource, $"INSERT INTO items (id, embedding, model, variant, metadata) VALUES ('new-{written}', @v, 'CLIP-ViT-B/32', 'fp32', '{{\"added\": true}}')",
                ("v", new Vector(vectors[written].Select(x => -x).ToArray())));
            await ExecuteAsync(dataSource, $"UPDATE items SET metadata = '{{\"category\": \"c{written % 7}\", \"edited\": true}}' WHERE id = 'i{written * 37 % Items:D4}'");
            var gone = $"i{((written * 53) + 11) % Items:D4}";
            await ExecuteAsync(dataSource, $"DELETE FROM items WHERE id = '{gone}'");
            deleted.Add(gone);
            written++;
        }

        Assert.True(await migration);
        Assert.True(written > 0, "no write happened during the migration");
        await using var store = await PostgresVectorStore.OpenAsync(options, Identity, CancellationToken.None);
        Assert.Equal(StorageMigrations.Current, await database.ScalarAsync<int>("SELECT max(version) FROM schema_migrations"));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM pg_tables WHERE tablename IN ('items_v1', 'items_next')"));
        await AssertEverythingKeptAsync(database, store, vectors, deleted);
        Assert.Equal((long)written, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE id LIKE 'new-%' AND metadata @> '{\"added\": true}'"));
        var edited = Enumerable.Range(0, written).Select(w => $"i{w * 37 % Items:D4}").Except(deleted).Distinct().ToList();
        Assert.Equal((long)edited.Count, await database.ScalarAsync<long>(
            $"SELECT count(*) FROM items WHERE metadata @> '{{\"edited\": true}}' AND id IN ({string.Join(',', edited.Select(e => $"'{e}'"))})"));
        await AssertSameResultsAsync(store, vectors, before, deleted);
        // A second run has nothing to do.
        Assert.False(await OnlineMigration.RunAsync(options, _ => { }, CancellationToken.None));
    }

    [DatabaseFact]
    public async Task A_store_of_version_2_gains_products_and_texts_at_start_when_small_and_by_migrate_when_large_with_nothing_lost()
    {
        foreach (var large in new[] { false, true })
        {
            await using var database = await TestDatabase.CreateAsync();
            var options = new StorageOptions { DatabaseUrl = database.Url, MigrateInlineLimit = large ? 100 : 100_000 };
            await using (var plain = NpgsqlDataSource.Create(options.ConnectionString()))
            {
                await StorageMigrations.ApplyAsync(plain, options, Identity, CancellationToken.None, upTo: 2);
            }

            var random = new Random(3);
            var vectors = Enumerable.Range(0, 500).Select(_ => Unit(Gaussian(random))).ToArray();
            await using var dataSource = VectorSource(options);
            for (var i = 0; i < vectors.Length; i++)
            {
                await ExecuteAsync(dataSource, $"INSERT INTO items (id, embedding, model, variant, metadata) VALUES ('v{i:D3}', @v, 'CLIP-ViT-B/32', 'fp32', '{{\"n\": {i}}}')",
                    ("v", new HalfVector(vectors[i].Select(x => (Half)x).ToArray())));
            }

            if (large)
            {
                var refused = await Assert.ThrowsAsync<StoreLayoutException>(() => PostgresVectorStore.OpenAsync(options, Identity, CancellationToken.None));
                Assert.Contains("schema version 2", refused.Message, StringComparison.Ordinal);
                Assert.Contains("migrate", refused.Message, StringComparison.Ordinal);
                // The previous version goes on writing (its statements name their columns) while migrate adds the columns and indexes.
                var migration = Task.Run(() => OnlineMigration.RunAsync(options, _ => { }, CancellationToken.None));
                var written = 0;
                while (!migration.IsCompleted)
                {
                    await ExecuteAsync(dataSource, $"INSERT INTO items (id, embedding, model, variant, metadata) VALUES ('w{written}', @v, 'CLIP-ViT-B/32', 'fp32', '{{}}')",
                        ("v", new HalfVector(vectors[written % 500].Select(x => (Half)x).ToArray())));
                    written++;
                }

                Assert.True(await migration);
                Assert.Equal((long)written, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE id LIKE 'w%'"));
            }

            await using var store = await PostgresVectorStore.OpenAsync(options, Identity, CancellationToken.None);
            Assert.Equal(3, await database.ScalarAsync<int>("SELECT max(version) FROM schema_migrations"));
            Assert.Equal(2L, await database.ScalarAsync<long>(
                "SELECT count(*) FROM pg_index WHERE indexrelid IN (to_regclass('items_product'), to_regclass('items_text')) AND indisvalid"));
            Assert.Equal(500L, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE id LIKE 'v%' AND product IS NULL AND text IS NULL"));
            var kept = await store.GetAsync("v123", withEmbedding: true, CancellationToken.None);
            Assert.Equal(123, System.Text.Json.JsonDocument.Parse(kept!.MetadataJson).RootElement.GetProperty("n").GetInt32());
            Assert.True(TensorPrimitives.CosineSimilarity(vectors[123], kept.Embedding) > 0.999f);
            var found = await store.SearchAsync(new SearchQuery(vectors[42], 3, null, null, null), CancellationToken.None);
            Assert.Equal("v042", found[0].Id);

            // The new columns work at once: an item with a product and words is found by them.
            await store.UpsertAsync(new NewItem("sku", vectors[7], "CLIP-ViT-B/32", "fp32", null, "{}", null, null, "P-1", "Runner AJ1-555088 red"), CancellationToken.None);
            var byWords = await store.SearchAsync(new SearchQuery(null, 5, null, null, null, SearchMode.Keyword, "aj1-555088"), CancellationToken.None);
            Assert.Equal(["sku"], byWords.Select(h => h.Id));
            Assert.Equal("P-1", byWords[0].Product);
            if (large) Assert.False(await OnlineMigration.RunAsync(options, _ => { }, CancellationToken.None));
        }
    }

    /// <summary>Items i0000..i1999 in 20 clusters, metadata with their cluster, a thumbnail on every fifth, written by schema version 1.</summary>
    private static async Task<float[][]> WriteFirstLayoutAsync(StorageOptions options)
    {
        await using (var plain = NpgsqlDataSource.Create(options.ConnectionString()))
        {
            await StorageMigrations.ApplyAsync(plain, options, Identity, CancellationToken.None, upTo: 1);
        }

        var random = new Random(5);
        var centres = Enumerable.Range(0, 20).Select(_ => Unit(Gaussian(random))).ToArray();
        var vectors = Enumerable.Range(0, Items).Select(i => Unit([.. centres[i % 20].Zip(Gaussian(random), (c, n) => c + (0.05f * n))])).ToArray();
        await using var dataSource = VectorSource(options);
        await using var connection = await dataSource.OpenConnectionAsync();
        await using (var import = await connection.BeginBinaryImportAsync("COPY items (id, embedding, model, variant, image_sha256, metadata, thumbnail, thumbnail_type) FROM STDIN (FORMAT BINARY)"))
        {
            for (var i = 0; i < Items; i++)
            {
                await import.StartRowAsync();
                await import.WriteAsync($"i{i:D4}", NpgsqlDbType.Text);
                await import.WriteAsync(new Vector(vectors[i]));
                await import.WriteAsync("CLIP-ViT-B/32", NpgsqlDbType.Text);
                await import.WriteAsync("fp32", NpgsqlDbType.Text);
                await import.WriteAsync($"sha{i}", NpgsqlDbType.Text);
                await import.WriteAsync($"{{\"category\": \"c{i % 20}\"}}", NpgsqlDbType.Jsonb);
                if (i % 5 == 0)
                {
                    await import.WriteAsync(Thumbnail(i), NpgsqlDbType.Bytea);
                    await import.WriteAsync("image/jpeg", NpgsqlDbType.Text);
                }
                else
                {
                    await import.WriteNullAsync();
                    await import.WriteNullAsync();
                }
            }

            await import.CompleteAsync();
        }

        return vectors;
    }

    /// <summary>The first layout's own answers (its HNSW index, as the previous version searched), for 40 stored vectors.</summary>
    private static async Task<List<string[]>> SearchFirstLayoutAsync(StorageOptions options, float[][] vectors)
    {
        await using var dataSource = VectorSource(options);
        var answers = new List<string[]>();
        for (var q = 0; q < 40; q++)
        {
            await using var command = dataSource.CreateCommand("SELECT id FROM items ORDER BY embedding <=> @q LIMIT 10");
            command.Parameters.AddWithValue("q", new Vector(vectors[q * 47 % Items]));
            var ids = new List<string>();
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync()) ids.Add(reader.GetString(0));
            answers.Add([.. ids]);
        }

        return answers;
    }

    private static async Task AssertEverythingKeptAsync(TestDatabase database, PostgresVectorStore store, float[][] vectors, HashSet<string> deleted)
    {
        Assert.Equal(Items - deleted.Count, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE id LIKE 'i%'"));
        foreach (var i in new[] { 0, 5, 123, 1000, 1995, 1999 }.Where(i => !deleted.Contains($"i{i:D4}")))
        {
            var item = await store.GetAsync($"i{i:D4}", withEmbedding: true, CancellationToken.None);
            Assert.NotNull(item);
            Assert.Equal($"sha{i}", item.ImageSha256);
            Assert.Equal(i % 5 == 0, item.HasThumbnail);
            Assert.True(TensorPrimitives.CosineSimilarity(vectors[i], item.Embedding) > 0.9999f);
            if (i % 5 == 0) Assert.Equal(Thumbnail(i), (await store.GetThumbnailAsync(item.Id, CancellationToken.None))!.Bytes);
        }

        Assert.Equal((long)Enumerable.Range(0, Items).Count(i => i % 5 == 0 && !deleted.Contains($"i{i:D4}")),
            await database.ScalarAsync<long>("SELECT count(*) FROM item_thumbnails"));
    }

    private static async Task AssertSameResultsAsync(PostgresVectorStore store, float[][] vectors, List<string[]> before, HashSet<string>? deleted = null)
    {
        double recall = 0;
        for (var q = 0; q < before.Count; q++)
        {
            var hits = await store.SearchAsync(new SearchQuery(vectors[q * 47 % Items], 10, null, null, null), CancellationToken.None);
            var expected = before[q].Where(id => deleted?.Contains(id) != true).ToList();
            recall += expected.Count(id => hits.Any(h => h.Id == id)) / (double)expected.Count;
        }

        Assert.True(recall / before.Count >= 0.99, $"recall@10 against the first layout's answers: {recall / before.Count:F3}");
    }

    private static NpgsqlDataSource VectorSource(StorageOptions options)
    {
        var builder = new NpgsqlDataSourceBuilder(options.ConnectionString());
        builder.UseVector();
        return builder.Build();
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = dataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync();
    }

    private static byte[] Thumbnail(int i) => [0xFF, 0xD8, (byte)i, (byte)(i >> 8), 0xFF, 0xD9];

    private static float[] Gaussian(Random random) =>
        [.. Enumerable.Range(0, 512).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())))];

    private static float[] Unit(float[] vector)
    {
        TensorPrimitives.Divide(vector, TensorPrimitives.Norm(vector), vector);
        return vector;
    }
}

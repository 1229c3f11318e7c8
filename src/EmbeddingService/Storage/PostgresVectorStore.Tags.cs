using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;

namespace EmbeddingService.Storage;

/// <summary>Tags: every stored vector read once (binary COPY, streamed) and labels written into the metadata, from the vectors alone.</summary>
public sealed partial class PostgresVectorStore
{
    /// <summary>The items matching <paramref name="filterJson"/> (all when null), in id order: id, vector, and the metadata's <paramref name="key"/> now.</summary>
    public async IAsyncEnumerable<(string Id, float[] Vector, string? Current)> StreamVectorsAsync(string? filterJson, string key,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        // COPY takes no parameters: the filter and the key go in as quoted literals of their own.
        var filter = filterJson is null ? "true" : $"metadata @> {Literal(filterJson)}::jsonb";
        await using var reader = await connection.BeginBinaryExportAsync(
            $"COPY (SELECT id, embedding, metadata ->> {Literal(key)} FROM items WHERE {filter} ORDER BY id) TO STDOUT (FORMAT BINARY)", cancellationToken);
        while (await reader.StartRowAsync(cancellationToken) != -1)
        {
            var id = await reader.ReadAsync<string>(NpgsqlDbType.Text, cancellationToken);
            var vector = (await reader.ReadAsync<Pgvector.HalfVector>(cancellationToken)).ToArray();
            var values = new float[vector.Length];
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(vector, values);
            string? current = null;
            if (reader.IsNull) await reader.SkipAsync(cancellationToken);
            else current = await reader.ReadAsync<string>(NpgsqlDbType.Text, cancellationToken);
            yield return (id, values, current);
        }
    }

    /// <summary>Writes each label under <paramref name="key"/> in its item's metadata (where it differs); how many were written.</summary>
    public Task<int> WriteTagsAsync(string key, IReadOnlyList<(string Id, string Label)> tags, CancellationToken cancellationToken) => Guard(async () =>
    {
        await using var command = dataSource.CreateCommand("""
            UPDATE items SET metadata = jsonb_set(metadata, ARRAY[@key], to_jsonb(t.label))
            FROM unnest(@ids::text[], @labels::text[]) AS t (id, label)
            WHERE items.id = t.id AND (items.metadata ->> @key) IS DISTINCT FROM t.label
            """);
        command.Parameters.AddWithValue("key", key);
        command.Parameters.AddWithValue("ids", tags.Select(t => t.Id).ToArray());
        command.Parameters.AddWithValue("labels", tags.Select(t => t.Label).ToArray());
        var written = await command.ExecuteNonQueryAsync(cancellationToken);
        await NoteWriteAsync(cancellationToken);
        return written;
    });

    private static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";
}

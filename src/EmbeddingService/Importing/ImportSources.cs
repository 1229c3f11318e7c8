using System.Buffers;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;
using Pgvector;

namespace EmbeddingService.Importing;

/// <summary>Where vectors come from: a JSON-lines file, or the rows of a query on another database. Both stream.</summary>
public static class ImportSources
{
    /// <summary>
    /// The lines of a file, parsed on every core (number parsing bounds a JSON-lines import: 512 numbers a line), in
    /// order of their reading, never more than a few thousand lines in memory.
    /// </summary>
    public static async IAsyncEnumerable<ImportRow> JsonLinesAsync(string path, int dimension, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var lines = Channel.CreateBounded<JsonLine>(4096);
        var rows = Channel.CreateBounded<ImportRow>(4096);
        var reading = Task.Run(() => ReadLinesAsync(path, lines.Writer, cancellationToken), cancellationToken);
        var parsers = Enumerable.Range(0, Math.Max(1, Environment.ProcessorCount)).Select(_ => Task.Run(async () =>
        {
            await foreach (var line in lines.Reader.ReadAllAsync(cancellationToken))
            {
                var row = line.TooLong
                    ? ImportRow.Failed($"line {line.Number}", null, $"the line is longer than {JsonLines.MaxLineBytes:N0} bytes")
                    : ImportRow.FromJsonLine(line.Span, line.Number, dimension);
                line.Return();
                await rows.Writer.WriteAsync(row, cancellationToken);
            }
        }, cancellationToken)).ToArray();
        var done = Task.WhenAll(parsers.Append(reading)).ContinueWith(t => rows.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
        await foreach (var row in rows.Reader.ReadAllAsync(cancellationToken)) yield return row;
        await done;
        await reading;
    }

    private static async Task ReadLinesAsync(string path, ChannelWriter<JsonLine> lines, CancellationToken cancellationToken)
    {
        try
        {
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            await foreach (var line in JsonLines.ReadAsync(file, cancellationToken)) await lines.WriteAsync(line, cancellationToken);
            lines.TryComplete();
        }
        catch (Exception e)
        {
            lines.TryComplete(e);
            throw;
        }
    }

    /// <summary>
    /// The rows of <paramref name="query"/> on another database (binary protocol, streamed): the id, the embedding
    /// (<c>vector</c>, <c>halfvec</c>, <c>real[]</c> or <c>double precision[]</c>) and, optionally, the metadata (json,
    /// jsonb or text holding an object), e.g. the replaced service's <c>SELECT id, embedding, metadata FROM products</c>;
    /// columns named <c>product</c> and <c>text</c> (text) anywhere after the embedding give the item's product and words.
    /// </summary>
    public static async IAsyncEnumerable<ImportRow> DatabaseAsync(string connectionString, string query, int dimension, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.UseVector();
        await using var dataSource = builder.Build();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand(query, connection) { CommandTimeout = 0 };
        await using var reader = await command.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, cancellationToken);
        if (reader.FieldCount < 2)
        {
            throw new ImportSourceException($"The query gives {reader.FieldCount} column(s); it must give the id, the embedding and, optionally, the metadata.");
        }

        var type = TypeName(reader, 1);
        // The largest vector pgvector stores (16,000 dimensions of 4 bytes), read into one buffer row after row.
        var wire = new byte[4 + (4 * 16_000)];
        // json and jsonb arrive valid: only their kind is checked. Text is parsed.
        var productColumn = Named(reader, "product");
        var textColumn = Named(reader, "text");
        var metadataColumn = reader.FieldCount > 2 && productColumn != 2 && textColumn != 2 ? 2 : -1;
        var metadataType = metadataColumn > 0 ? TypeName(reader, 2) : null;
        var metadataIsJson = metadataType is "json" or "jsonb";
        while (await reader.ReadAsync(cancellationToken))
        {
            var id = reader.IsDBNull(0) ? null : Convert.ToString(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture);
            var where = id is null ? "a row without id" : $"id '{id}'";
            float[]? vector;
            try
            {
                vector = reader.IsDBNull(1) ? null : Vector(reader, type, wire);
            }
            catch (Exception e) when (e is InvalidCastException or NotSupportedException)
            {
                throw new ImportSourceException($"The embedding column is of type {type}; use vector, halfvec, real[] or double precision[] (cast it in the query).", e);
            }

            // Sequential access: the columns are read in their order.
            string? metadata = null, product = null, text = null;
            for (var column = 2; column < reader.FieldCount; column++)
            {
                if (reader.IsDBNull(column)) continue;
                if (column == metadataColumn) metadata = reader.GetString(column);
                else if (column == productColumn) product = Convert.ToString(reader.GetValue(column), System.Globalization.CultureInfo.InvariantCulture);
                else if (column == textColumn) text = reader.GetString(column);
            }

            metadata ??= "{}";
            yield return (metadataIsJson ? metadata.AsSpan().TrimStart().StartsWith('{') : MetadataIsObject(metadata))
                ? ImportRow.Checked(where, id, vector, metadata, dimension, product, text)
                : ImportRow.Failed(where, id, "the metadata is not a JSON object");
        }
    }

    /// <summary>The column of that name after the id and the embedding, or -1.</summary>
    private static int Named(NpgsqlDataReader reader, string name)
    {
        for (var column = 2; column < reader.FieldCount; column++)
        {
            if (string.Equals(reader.GetName(column), name, StringComparison.OrdinalIgnoreCase)) return column;
        }

        return -1;
    }

    private static float[] Vector(NpgsqlDataReader reader, string type, byte[] wire) => type switch
    {
        // vector and halfvec in their binary wire format (dimension, a zero, big-endian numbers), converted a row at
        // a time with vector instructions: Pgvector's converter reads number by number, which bounded an import
        // from a table (docs/decisions.md, import).
        "vector" => FromWire<float>(wire.AsSpan(0, (int)reader.GetBytes(1, 0, wire, 0, wire.Length))),
        "halfvec" => FromWire<Half>(wire.AsSpan(0, (int)reader.GetBytes(1, 0, wire, 0, wire.Length))),
        "real[]" => reader.GetFieldValue<float[]>(1),
        "double precision[]" => [.. reader.GetFieldValue<double[]>(1).Select(d => (float)d)],
        _ => throw new NotSupportedException(type),
    };

    private static float[] FromWire<T>(ReadOnlySpan<byte> wire)
        where T : unmanaged
    {
        var size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var dimensions = wire.Length < 4 ? -1 : System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(wire);
        if (dimensions < 0 || wire.Length != 4 + (size * dimensions)) throw new InvalidCastException("not pgvector's binary format");
        var vector = new float[dimensions];
        var numbers = wire[4..];
        if (typeof(T) == typeof(float))
        {
            var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(vector.AsSpan());
            System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(numbers), bits);
        }
        else
        {
            var halves = new ushort[dimensions];
            System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(numbers), halves);
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(halves.AsSpan()), vector);
        }

        return vector;
    }

    private static string TypeName(NpgsqlDataReader reader, int column) =>
        reader.GetDataTypeName(column) is var name && name.LastIndexOf('.') is >= 0 and var dot ? name[(dot + 1)..] : name;

    private static bool MetadataIsObject(string json)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }
}

/// <summary>The source itself cannot be read as vectors (not a row's fault): the import stops with this sentence.</summary>
public sealed class ImportSourceException : Exception
{
    public ImportSourceException()
    {
    }

    public ImportSourceException(string message)
        : base(message)
    {
    }

    public ImportSourceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

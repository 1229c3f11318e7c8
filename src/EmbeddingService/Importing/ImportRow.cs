using System.Text.Json;

namespace EmbeddingService.Importing;

/// <summary>A vector computed elsewhere, with its id, metadata (a JSON object), product and text, or why its row cannot be taken.</summary>
/// <param name="Where">How the summary names the row: "line 12", or the id.</param>
public sealed record ImportRow(string Where, string? Id, float[]? Vector, string MetadataJson, string? Failure, string? Product = null, string? Text = null)
{
    public static ImportRow Failed(string where, string? id, string reason) => new(where, id, null, "{}", reason);

    /// <summary>One JSON line: <c>{"id": "...", "embedding": [...], "metadata": {...}, "product": "...", "text": "..."}</c>, read without building a document.</summary>
    /// <remarks>The embedding's bytes are overwritten: pass a copy the caller no longer needs.</remarks>
    public static ImportRow FromJsonLine(Span<byte> line, long number, int dimension)
    {
        var where = $"line {number}";
        string? id = null;
        float[]? vector = null;
        var metadata = "{}";
        string? product = null, text = null;
        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return Failed(where, null, "not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("id"))
                {
                    reader.Read();
                    id = reader.TokenType switch
                    {
                        JsonTokenType.String => reader.GetString(),
                        JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
                        _ => null,
                    };
                    if (id is null) return Failed(where, null, "\"id\" must be a string or a number");
                }
                else if (reader.ValueTextEquals("embedding"))
                {
                    var values = new List<float>(dimension);
                    switch (JsonNumberArray.Read(line, (int)reader.BytesConsumed, values, out var start, out var end, out var failedAt))
                    {
                        case JsonNumberArray.Outcome.NotNumber:
                            return Failed(where, id, $"embedding[{failedAt}] is not a number");
                        case JsonNumberArray.Outcome.Malformed:
                            return Failed(where, id, "not valid JSON (the embedding array)");
                        case JsonNumberArray.Outcome.NotArray:
                            return Failed(where, id, "\"embedding\" must be an array of numbers");
                    }

                    // The reader goes on past the array, which it need not tokenize again: the bytes become a 0 and
                    // spaces (the line is this parse's own copy).
                    line[start..end].Fill((byte)' ');
                    line[start] = (byte)'0';
                    reader.Read();
                    vector = [.. values];
                }
                else if (reader.ValueTextEquals("product") || reader.ValueTextEquals("text"))
                {
                    var isProduct = reader.ValueTextEquals("product");
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Null) continue;
                    if (reader.TokenType != JsonTokenType.String) return Failed(where, id, $"\"{(isProduct ? "product" : "text")}\" must be a string");
                    if (isProduct) product = reader.GetString();
                    else text = reader.GetString();
                }
                else if (reader.ValueTextEquals("metadata"))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Null) continue;
                    if (reader.TokenType != JsonTokenType.StartObject) return Failed(where, id, "\"metadata\" must be a JSON object");
                    using var document = JsonDocument.ParseValue(ref reader);
                    metadata = document.RootElement.GetRawText();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException e)
        {
            return Failed(where, id, $"not valid JSON ({e.Message.Split(". ")[0]})");
        }
        catch (InvalidOperationException)
        {
            return Failed(where, id, "a string is not valid Unicode text");
        }

        return Checked(where, id, vector, metadata, dimension, product, text);
    }

    /// <summary>Why <paramref name="id"/> cannot name an item (1 to 256 characters, none a control character), or null.</summary>
    public static string? IdProblem(string? id) => Storage.ItemFields.NameProblem(id, "the id");

    /// <summary>Why a JSON object cannot be stored as metadata (the NUL character, which jsonb refuses), or null.</summary>
    public static string? MetadataProblem(string json) =>
        json.Contains("\\u0000", StringComparison.Ordinal) ? "the metadata holds the NUL character (\\u0000), which PostgreSQL's jsonb refuses" : null;

    /// <summary>
    /// XXH3-64 of an id's UTF-8: seedless, so the same on every machine and run (<see cref="string.GetHashCode()"/> is
    /// not). Shards split by it; runs track the ids they have seen by it (ten million take ~200 MB as hashes, ~1 GB as strings).
    /// </summary>
    public static ulong IdHash(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var length = System.Text.Encoding.UTF8.GetByteCount(id);
        var utf8 = length <= 1024 ? stackalloc byte[1024] : new byte[length];
        return System.IO.Hashing.XxHash3.HashToUInt64(utf8[..System.Text.Encoding.UTF8.GetBytes(id, utf8)]);
    }

    /// <summary>
    /// A row whose parts were read: the id and vector (of the store's dimension) checked, the metadata a JSON object
    /// without NUL, the product and text as <see cref="Storage.ItemFields"/> takes them.
    /// </summary>
    public static ImportRow Checked(string where, string? id, float[]? vector, string metadata, int dimension, string? product = null, string? text = null)
    {
        if (IdProblem(id) is { } wrongId) return Failed(where, id, wrongId);
        if (vector is null) return Failed(where, id, "no \"embedding\"");
        if (Storage.VectorCheck.Normalize(vector, dimension, "embedding") is { } bad) return Failed(where, id, bad);
        if (MetadataProblem(metadata) is { } wrongMetadata) return Failed(where, id, wrongMetadata);
        if (product is not null && Storage.ItemFields.ProductProblem(product) is { } wrongProduct) return Failed(where, id, wrongProduct);
        if (text is not null && Storage.ItemFields.TextProblem(text) is { } wrongText) return Failed(where, id, wrongText);
        return new ImportRow(where, id, vector, metadata, null, product, text);
    }

    /// <summary>The row as the store writes it.</summary>
    public Storage.VectorRow ToVectorRow() => new(Id!, Vector!, MetadataJson, Product, Text);
}

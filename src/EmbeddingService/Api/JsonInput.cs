using System.Runtime.InteropServices;
using System.Text.Json;
using EmbeddingService.Errors;
using EmbeddingService.Limits;
using EmbeddingService.Model;

namespace EmbeddingService.Api;

/// <summary>
/// Reads a client's JSON the same way on every route. The rule for 400 and 422: bytes that are not JSON, or strings
/// that are not Unicode text (invalid UTF-8, an unpaired \ud800 escape, a NUL that PostgreSQL's jsonb refuses), are
/// malformed (400); well-formed JSON with a member missing, of the wrong type or out of range is invalid (422); a text
/// over MAX_TEXT_CHARS is too large (413). Each throws the <see cref="ApiError"/> that says so.
/// </summary>
internal static class JsonInput
{
    public static JsonDocument Parse(ReadOnlyMemory<byte> json, int maxDepth = 32)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw ApiError.NotJson(e).Exception(e);
        }
    }

    /// <summary>The document's root when it is an object; <paramref name="shape"/> says what the route takes.</summary>
    public static JsonElement Object(JsonDocument document, string shape) =>
        document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement : throw Invalid(shape);

    /// <summary>A string of valid Unicode (<see cref="JsonElement.GetString"/> throws on JSON strings that are not).</summary>
    public static string String(JsonElement element, string name, string? parameter = null)
    {
        if (element.ValueKind != JsonValueKind.String)
        {
            throw Invalid($"\"{name}\" must be a string, not {element.ValueKind.ToString().ToLowerInvariant()}.", parameter);
        }

        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw ApiError.Malformed($"\"{name}\" is not valid Unicode text (invalid UTF-8, or an unpaired surrogate escape).", parameter).Exception(e);
        }
    }

    /// <summary>A text to embed: a non-blank string within MAX_TEXT_CHARS.</summary>
    public static string Text(JsonElement element, string name, RequestLimits limits, string? parameter = null)
    {
        var text = String(element, name, parameter);
        if (string.IsNullOrWhiteSpace(text)) throw Invalid($"\"{name}\" is empty.", parameter);
        return text.Length <= limits.MaxTextChars ? text : throw new ApiError(ErrorKind.TooLarge,
            $"\"{name}\" has {text.Length:N0} characters; at most {limits.MaxTextChars:N0} are accepted (MAX_TEXT_CHARS).", "text_too_long", parameter).Exception();
    }

    /// <summary>A batch's length: 1 to MAX_BATCH_ITEMS.</summary>
    public static int Count(JsonElement array, string name, RequestLimits limits, string? parameter = null)
    {
        var count = array.GetArrayLength();
        return count == 0 ? throw Invalid($"\"{name}\" is empty.", parameter)
            : count <= limits.MaxBatchItems ? count
            : throw new ApiError(ErrorKind.Invalid, $"\"{name}\" has {count} items; at most {limits.MaxBatchItems} are accepted (MAX_BATCH_ITEMS).",
                "batch_too_large", parameter).Exception();
    }

    /// <summary>
    /// A JSON object given as JSON text (metadata, a search filter; a form field, or a client that sent the object as a
    /// string), as raw JSON for jsonb.
    /// </summary>
    public static string ObjectText(string json, string name, string example)
    {
        using var document = ParseField(json, name);
        var element = document.RootElement;
        if (element.ValueKind == JsonValueKind.String) return ObjectText(String(element, name), name, example);
        if (element.ValueKind != JsonValueKind.Object) throw Invalid($"{name} must be a JSON object, e.g. {example}.", name);
        return json.Contains("\\u0000", StringComparison.OrdinalIgnoreCase)
            ? throw ApiError.Malformed($"{name} cannot hold the NUL character (\\u0000).", name).Exception()
            : element.GetRawText();
    }

    /// <summary>An embedding computed elsewhere: <paramref name="dimension"/> (the store's) finite numbers, not all zero; L2-normalized here.</summary>
    public static float[] Vector(JsonElement element, string name, int dimension)
    {
        if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() != dimension)
        {
            throw Invalid($"\"{name}\" must be an array of {dimension} numbers" +
                $"{(element.ValueKind == JsonValueKind.Array ? $", not {element.GetArrayLength()}" : string.Empty)}.", name);
        }

        var vector = new float[dimension];
        var i = 0;
        foreach (var value in element.EnumerateArray())
        {
            // A number beyond float's range is not one: TryGetSingle gives infinity, refused below.
            vector[i] = value.ValueKind == JsonValueKind.Number && value.TryGetSingle(out var number) ? number : float.NaN;
            i++;
        }

        return Storage.VectorCheck.Normalize(vector, dimension, $"\"{name}\"") is { } problem ? throw Invalid(problem + ".", name) : vector;
    }

    /// <summary>
    /// An image as <c>data:[type];base64,...</c>, decoded straight from the body's UTF-8 into a pooled buffer (the
    /// caller disposes it); anything else is refused: the service never fetches URLs.
    /// </summary>
    public static ByteBuffer DataUri(JsonElement url, string name, string? parameter, long maxImageBytes)
    {
        if (url.ValueKind != JsonValueKind.String) throw Invalid($"{name}: the image must be a string (data:image/jpeg;base64,...).", parameter);
        var raw = JsonMarshal.GetRawUtf8Value(url);
        var value = raw.Length >= 2 ? raw[1..^1] : raw;
        if (value.Contains((byte)'\\')) value = System.Text.Encoding.UTF8.GetBytes(String(url, name, parameter));
        var comma = value.IndexOf((byte)',');
        if (!value.StartsWith("data:"u8) || comma < 0)
        {
            throw Invalid($"{name}: only data: URIs are accepted (data:image/jpeg;base64,...); the service never fetches URLs.", parameter);
        }

        if (!value[..comma].EndsWith(";base64"u8)) throw Invalid($"{name}: the data URI must be base64 (data:image/...;base64,...).", parameter);
        var encoded = value[(comma + 1)..];
        var maxLength = System.Buffers.Text.Base64.GetMaxDecodedFromUtf8Length(encoded.Length);
        if (maxLength > maxImageBytes + 3)
        {
            throw new ApiError(ErrorKind.TooLarge, $"{name}: the image is larger than the limit of {maxImageBytes:N0} bytes (MAX_UPLOAD_BYTES).",
                "upload_too_large", parameter).Exception();
        }

        var buffer = BoundedBufferPool.Uploads.Rent(Math.Max(maxLength, 1));
        if (System.Buffers.Text.Base64.DecodeFromUtf8(encoded, buffer.Span, out _, out var written) != System.Buffers.OperationStatus.Done)
        {
            buffer.Dispose();
            throw ApiError.Malformed($"{name}: the data URI is not valid base64.", parameter).Exception();
        }

        return buffer.TakeFirst(written);
    }

    public static ApiException Invalid(string message, string? parameter = null) => ApiError.Invalid(message, parameter).Exception();

    private static JsonDocument ParseField(string json, string name)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw ApiError.Malformed($"{name} is not valid JSON: {e.Message}", name).Exception(e);
        }
    }
}

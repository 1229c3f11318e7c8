using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmbeddingService.Importing;

namespace EmbeddingService.Indexing;

/// <summary>An item to index: its id, where its image is (a file or a URL), its metadata, product and text; or why its entry is unusable.</summary>
/// <param name="Where">How the summary names it: the file, the URL, or the manifest's line.</param>
public sealed record CatalogEntry(string Where, string? Id, string MetadataJson, string? Path, Uri? Url, string? Failure, ItemWords Words = default)
{
    public static CatalogEntry Failed(string where, string reason) => new(where, null, "{}", null, null, reason);
}

/// <summary>An item's product and text as a manifest or metadata line gives them (members <c>"product"</c> and <c>"text"</c>).</summary>
public readonly record struct ItemWords(string? Product, string? Text)
{
    /// <summary>Takes <c>"product"</c> and <c>"text"</c> out of <paramref name="entry"/>; why they cannot be stored, or null.</summary>
    public static string? Take(JsonObject entry, out ItemWords words)
    {
        words = default;
        string? product = null, text = null;
        foreach (var name in (ReadOnlySpan<string>)["product", "text"])
        {
            var node = entry[name];
            entry.Remove(name);
            if (node is null) continue;
            if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.String) return $"\"{name}\" must be a string";
            var read = value.GetValue<string>();
            var problem = name == "product" ? Storage.ItemFields.ProductProblem(read) : Storage.ItemFields.TextProblem(read);
            if (problem is not null) return problem;
            if (name == "product") product = read;
            else text = read;
        }

        words = new ItemWords(product, text);
        return null;
    }
}

/// <summary>Where the items of an index run come from: a folder of images, or a manifest of ids with paths or URLs. Both stream.</summary>
public static class CatalogSources
{
    private static readonly HashSet<string> Extensions = new([".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"], StringComparer.OrdinalIgnoreCase);

    /// <summary>The images of a folder (recursively, in ordinal order), named by file name or relative path; metadata from a JSON-lines file.</summary>
    public static async IAsyncEnumerable<CatalogEntry> FolderAsync(string folder, string? metadataFile, IdFrom idFrom, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var metadata = new Dictionary<string, (string Json, ItemWords Words)>(StringComparer.Ordinal);
        if (metadataFile is not null)
        {
            await foreach (var problem in ReadMetadataAsync(metadataFile, metadata, cancellationToken)) yield return problem;
        }

        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(System.IO.Path.GetExtension(f)))
            .Order(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var id = idFrom == IdFrom.Name ? System.IO.Path.GetFileName(file) : System.IO.Path.GetRelativePath(folder, file).Replace('\\', '/');
            var (json, words) = metadata.TryGetValue(id, out var given) ? given : ("{}", default);
            yield return new CatalogEntry(file, id, json, file, null, null, words);
        }
    }

    /// <summary>
    /// A manifest's lines, <c>{"id": "...", "path": "..."}</c> or <c>{"id": "...", "url": "https://..."}</c> with an
    /// optional <c>"metadata"</c> object, read as they come from a file or an http(s) URL. A path is relative to the
    /// manifest's folder (or URL).
    /// </summary>
    public static async IAsyncEnumerable<CatalogEntry> ManifestAsync(string manifest, HttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        Stream stream;
        Uri? baseUrl = null;
        string? baseFolder = null;
        if (ImageFetcher.TryParseUrl(manifest, out var url))
        {
            var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new CatalogSourceException($"The manifest {url} cannot be read: HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
            }

            stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            baseUrl = response.RequestMessage?.RequestUri ?? url;
        }
        else
        {
            stream = new FileStream(manifest, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            baseFolder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(manifest))!;
        }

        await using (stream)
        {
            await foreach (var line in JsonLines.ReadAsync(stream, cancellationToken))
            {
                var entry = line.TooLong
                    ? CatalogEntry.Failed($"{manifest}:{line.Number}", $"the line is longer than {JsonLines.MaxLineBytes:N0} bytes")
                    : Entry(line.Span, $"{manifest}:{line.Number}", baseFolder, baseUrl);
                line.Return();
                yield return entry;
            }
        }
    }

    private static CatalogEntry Entry(ReadOnlySpan<byte> line, string where, string? baseFolder, Uri? baseUrl)
    {
        JsonObject entry;
        try
        {
            if (JsonNode.Parse(line) is not JsonObject parsed) return CatalogEntry.Failed(where, "not a JSON object");
            entry = parsed;
        }
        catch (JsonException e)
        {
            return CatalogEntry.Failed(where, $"not valid JSON ({e.Message.Split(". ")[0]})");
        }

        var id = entry["id"] is JsonValue value && value.GetValueKind() is JsonValueKind.String or JsonValueKind.Number ? value.ToString() : null;
        if (ImportRow.IdProblem(id) is { } bad) return CatalogEntry.Failed(where, bad);
        var metadata = entry["metadata"];
        if (metadata is not (null or JsonObject)) return CatalogEntry.Failed(where, $"id '{id}': \"metadata\" must be a JSON object");
        var metadataJson = metadata?.ToJsonString() ?? "{}";
        if (ImportRow.MetadataProblem(metadataJson) is { } wrongMetadata) return CatalogEntry.Failed(where, $"id '{id}': {wrongMetadata}");
        if (ItemWords.Take(entry, out var words) is { } wrongWords) return CatalogEntry.Failed(where, $"id '{id}': {wrongWords}");
        var (path, url) = (entry["path"], entry["url"]);
        if ((path is null) == (url is null)) return CatalogEntry.Failed(where, $"id '{id}': give either \"path\" or \"url\"");
        if (url is not null)
        {
            return url is JsonValue u && u.GetValueKind() == JsonValueKind.String && ImageFetcher.TryParseUrl(u.GetValue<string>(), out var absolute)
                ? new CatalogEntry(absolute.ToString(), id, metadataJson, null, absolute, null, words)
                : CatalogEntry.Failed(where, $"id '{id}': \"url\" must be an absolute http:// or https:// URL");
        }

        if (path is not JsonValue p || p.GetValueKind() != JsonValueKind.String || p.GetValue<string>() is not { Length: > 0 } relative)
        {
            return CatalogEntry.Failed(where, $"id '{id}': \"path\" must be a file name");
        }

        if (baseUrl is not null)
        {
            // A manifest fetched from a server names its images relative to itself.
            return Uri.TryCreate(baseUrl, relative, out var resolved) && ImageFetcher.TryParseUrl(resolved.ToString(), out var fetched)
                ? new CatalogEntry(fetched.ToString(), id, metadataJson, null, fetched, null, words)
                : CatalogEntry.Failed(where, $"id '{id}': \"path\" does not resolve to an http(s) URL beside the manifest");
        }

        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseFolder!, relative));
        return new CatalogEntry(full, id, metadataJson, full, null, null, words);
    }

    /// <summary>One JSON object per line: "id" names the item, "product" and "text" are its product and words, every other property is its metadata.</summary>
    private static async IAsyncEnumerable<CatalogEntry> ReadMetadataAsync(string file, Dictionary<string, (string Json, ItemWords Words)> metadata, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var stream = File.OpenRead(file);
        await foreach (var line in JsonLines.ReadAsync(stream, cancellationToken))
        {
            string? id = null;
            JsonObject? entry = null;
            try
            {
                if (!line.TooLong && JsonNode.Parse(line.Span) is JsonObject parsed && parsed["id"] is JsonValue value && value.GetValueKind() == JsonValueKind.String)
                {
                    (entry, id) = (parsed, value.GetValue<string>());
                }
            }
            catch (JsonException)
            {
            }
            finally
            {
                line.Return();
            }

            if (entry is null || id is null)
            {
                yield return CatalogEntry.Failed($"{file}:{line.Number}", "not a JSON object with a string \"id\"");
                continue;
            }

            entry.Remove("id");
            if (ItemWords.Take(entry, out var words) is { } wrongWords)
            {
                yield return CatalogEntry.Failed($"{file}:{line.Number}", $"id '{id}': {wrongWords}");
                continue;
            }

            metadata[id] = (entry.ToJsonString(), words);
        }
    }
}

/// <summary>The input itself cannot be read (not one entry's fault): the run stops with this sentence.</summary>
public sealed class CatalogSourceException : Exception
{
    public CatalogSourceException()
    {
    }

    public CatalogSourceException(string message)
        : base(message)
    {
    }

    public CatalogSourceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

using System.Buffers;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace EmbeddingService.Api;

/// <summary>An uploaded file's bytes in a pooled buffer, returned to the pool on dispose.</summary>
public sealed class UploadedFile(byte[] buffer, int length) : IDisposable
{
    private byte[]? _buffer = buffer;

    public ReadOnlyMemory<byte> Content => (_buffer ?? throw new ObjectDisposedException(nameof(UploadedFile))).AsMemory(0, length);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } array)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}

public enum UploadProblem
{
    None,
    NotMultipart,
    FieldMissing,
    TooLarge,
}

/// <summary>
/// Streams a multipart body straight into a pooled buffer: no form collection, no temporary files, and the
/// size limit is enforced while reading, so an oversized upload is never held in full.
/// </summary>
public static class MultipartFileReader
{
    public static async Task<(UploadedFile? File, UploadProblem Problem)> ReadAsync(HttpRequest request, string field, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
        {
            return (null, UploadProblem.NotMultipart);
        }

        var reader = new MultipartReader(boundary, request.Body);
        while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
        {
            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase)
                || !HeaderUtilities.RemoveQuotes(disposition.Name).Equals(field, StringComparison.Ordinal))
            {
                continue;
            }

            return await ReadSectionAsync(section.Body, maxBytes, cancellationToken);
        }

        return (null, UploadProblem.FieldMissing);
    }

    private static async Task<(UploadedFile?, UploadProblem)> ReadSectionAsync(Stream body, long maxBytes, CancellationToken cancellationToken)
    {
        // Room for one byte past the limit: reading it proves the upload too large without reading the rest.
        var capacityLimit = (int)Math.Min(maxBytes + 1, Array.MaxLength);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(64 * 1024, capacityLimit));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(capacityLimit, (long)buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken);
                if (read == 0)
                {
                    return (new UploadedFile(buffer, length), UploadProblem.None);
                }

                length += read;
                if (length > maxBytes)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return (null, UploadProblem.TooLarge);
                }
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}

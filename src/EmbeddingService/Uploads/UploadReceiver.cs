using EmbeddingService.Errors;
using EmbeddingService.Telemetry;
using System.Text;
using EmbeddingService.Limits;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace EmbeddingService.Uploads;

/// <summary>
/// Receives multipart bodies with every bound an internet-facing service needs: how many at once, how much
/// memory they hold together, how long they may take, how large files and fields and the number of parts may
/// be. Whatever the client's bytes are, the outcome is a form or an <see cref="ApiException"/> with a 4xx (or a
/// 503 when the service is busy), never another exception.
/// </summary>
public sealed class UploadReceiver : IDisposable
{
    /// <summary>Text fields are small JSON objects or numbers.</summary>
    public const int MaxTextFieldBytes = 64 * 1024;

    /// <summary>Parts a body may have, counting skipped ones: a form with thousands is an attack, not a client.</summary>
    public const int MaxParts = 256;

    private readonly UploadOptions _options;
    private readonly ServiceMetrics _metrics;
    private readonly SemaphoreSlim _slots;
    private readonly ResourceBudget _memory;

    public UploadReceiver(IOptions<UploadOptions> options, ServiceMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _metrics = metrics;
        _slots = new SemaphoreSlim(_options.MaxConcurrentUploads);
        _memory = new ResourceBudget(_options.MaxUploadMemoryBytes);
    }

    /// <summary>Receives a multipart body whose parts <paramref name="spec"/> describes; a form without them is FastAPI's 422.</summary>
    /// <exception cref="ApiException">The body could not be received, or has no <see cref="FormSpec.FileField"/>.</exception>
    public async Task<ReceivedForm> ReceiveAsync(HttpRequest request, FormSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(spec);
        LimitBody(request, spec.MaxBodyBytes);
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 and <= 70 } boundary)
        {
            throw ApiError.MissingField(spec.FileField, $"Send multipart/form-data (with a boundary of 1 to 70 characters) and the file in a field named '{spec.FileField}'.").Exception();
        }

        var form = await ReceiveWithinBoundsAsync((form, token) => ReadPartsAsync(request, boundary, spec, form, token), cancellationToken);
        if (form.Files.Count == 0)
        {
            form.Dispose();
            throw ApiError.MissingField(spec.FileField, $"The multipart form has no field named '{spec.FileField}'.").Exception();
        }

        return form;
    }

    /// <summary>Receives a whole body (JSON) of at most <paramref name="maxBytes"/>, under the same bounds as uploads.</summary>
    /// <exception cref="ApiException">The body could not be received.</exception>
    public Task<ReceivedForm> ReceiveBodyAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        LimitBody(request, maxBytes);
        return ReceiveWithinBoundsAsync(async (form, token) =>
        {
            var (buffer, length) = await ReadSectionAsync(new RequestBodyStream(request.BodyReader), maxBytes, form.Memory, token);
            if (buffer is null)
            {
                return TooLarge($"The request body is larger than the limit of {maxBytes:N0} bytes for this route.");
            }

            form.Add(new UploadedFile(null, buffer, length));
            return null;
        }, cancellationToken);
    }

    public void Dispose() => _slots.Dispose();

    /// <summary>
    /// Runs <paramref name="read"/> holding an upload slot, with the upload deadline, into a form whose buffers are
    /// paid from the memory budget; every way reading can fail because of the client becomes an <see cref="ApiException"/>.
    /// </summary>
    private async Task<ReceivedForm> ReceiveWithinBoundsAsync(Func<ReceivedForm, CancellationToken, Task<ApiError?>> read, CancellationToken cancellationToken)
    {
        if (!_slots.Wait(0, CancellationToken.None))
        {
            throw new ApiError(ErrorKind.Busy, $"The service is receiving {_options.MaxConcurrentUploads} uploads already (MAX_CONCURRENT_UPLOADS); retry shortly.",
                "uploads_busy").Exception();
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(_options.UploadTimeoutSeconds));
        var form = new ReceivedForm(await _memory.AcquireAsync(0, CancellationToken.None));
        try
        {
            if (await read(form, deadline.Token) is { } failure) throw failure.Exception();
            long bytes = 0;
            foreach (var file in form.Files) bytes += file.Content.Length;
            _metrics.Received(bytes);
            return form;
        }
        catch (Exception e) when (e is not ApiException && Failure(e, deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested) is { } failure)
        {
            form.Dispose();
            throw failure.Exception(e);
        }
        catch
        {
            form.Dispose();
            throw;
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Kestrel's whole-body limit for this request: a route with many images takes more than one file's worth.</summary>
    private static void LimitBody(HttpRequest request, long? maxBytes)
    {
        if (maxBytes is { } limit && request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit + (64 * 1024);
        }
    }

    private async Task<ApiError?> ReadPartsAsync(HttpRequest request, string boundary, FormSpec spec, ReceivedForm form, CancellationToken cancellationToken)
    {
        var reader = new MultipartReader(boundary, new RequestBodyStream(request.BodyReader));
        var parts = 0;
        while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
        {
            if (++parts > MaxParts)
            {
                return ApiError.Malformed($"The multipart body has more than {MaxParts} parts.");
            }

            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value;
            if (string.Equals(name, spec.FileField, StringComparison.Ordinal))
            {
                if (form.Files.Count == spec.MaxFiles)
                {
                    return new ApiError(ErrorKind.Invalid, $"At most {spec.MaxFiles} '{spec.FileField}' parts are accepted in one request.", "batch_too_large", spec.FileField);
                }

                var (buffer, length) = await ReadSectionAsync(section.Body, _options.MaxUploadBytes, form.Memory, cancellationToken);
                if (buffer is null)
                {
                    return TooLarge($"The file is larger than the limit of {_options.MaxUploadBytes:N0} bytes (MAX_UPLOAD_BYTES).");
                }

                var fileName = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
                form.Add(new UploadedFile(fileName, buffer, length));
                if (spec.StopAtFirstFile)
                {
                    return null;
                }
            }
            else if (name is not null && spec.TextFields.Contains(name, StringComparer.Ordinal))
            {
                var (buffer, length) = await ReadSectionAsync(section.Body, MaxTextFieldBytes, form.Memory, cancellationToken);
                if (buffer is null)
                {
                    return TooLarge($"The form field '{name}' is longer than {MaxTextFieldBytes:N0} bytes.");
                }

                using var field = new UploadedFile(null, buffer, length);
                try
                {
                    form.Add(name, StrictUtf8.GetString(field.Content.Span));
                }
                catch (DecoderFallbackException)
                {
                    return ApiError.Malformed($"The form field '{name}' is not valid UTF-8.", name);
                }
            }
        }

        return null;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads one part into a buffer that doubles as it fills, each growth paid for from the memory budget first.</summary>
    /// <returns>The buffer and its length, or no buffer when the part is longer than <paramref name="maxBytes"/>.</returns>
    private static async Task<(ByteBuffer? Buffer, int Length)> ReadSectionAsync(Stream body, long maxBytes, ResourceBudget.Lease memory, CancellationToken cancellationToken)
    {
        var pool = BoundedBufferPool.Uploads;
        // Room for one byte past the limit: reading it proves the part too large without reading the rest.
        var capacityLimit = (int)Math.Min(maxBytes + 1, Array.MaxLength);
        var size = Math.Min(64 * 1024, capacityLimit);
        await memory.GrowAsync(size, cancellationToken);
        var buffer = pool.Rent(size);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = (int)Math.Min(capacityLimit, (long)buffer.Length * 2);
                    await memory.GrowAsync(larger, cancellationToken);
                    var grown = pool.Rent(larger);
                    buffer.Span[..length].CopyTo(grown.Span);
                    buffer.Dispose();
                    memory.Shrink(size);
                    (buffer, size) = (grown, larger);
                }

                var read = await body.ReadAsync(buffer.Memory[length..], cancellationToken);
                if (read == 0)
                {
                    return (buffer, length);
                }

                length += read;
                if (length > maxBytes)
                {
                    buffer.Dispose();
                    return (null, 0);
                }
            }
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>The client's side of every way reading a body can fail; null for the server's own faults.</summary>
    private ApiError? Failure(Exception exception, bool deadlinePassed) => exception switch
    {
        OperationCanceledException when deadlinePassed => TooSlow($"The upload did not arrive within {_options.UploadTimeoutSeconds} s (UPLOAD_TIMEOUT_S)."),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => TooLarge("The request body is larger than this route accepts."),
        BadHttpRequestException { StatusCode: StatusCodes.Status408RequestTimeout } =>
            TooSlow($"The upload arrived more slowly than {_options.UploadMinBytesPerSecond:N0} bytes/s (UPLOAD_MIN_BYTES_PER_S)."),
        BadHttpRequestException e => ApiError.Malformed($"The request body could not be read: {e.Message}"),
        // MultipartReader: a body that ends before its closing boundary ("Unexpected end of Stream").
        IOException => ApiError.Malformed("The multipart body ended before its closing boundary (truncated upload or wrong boundary)."),
        // MultipartReader: header lines or header blocks over its limits, malformed part headers.
        InvalidDataException e => ApiError.Malformed($"The multipart body is malformed: {e.Message}"),
        _ => null,
    };

    private static ApiError TooLarge(string message) => new(ErrorKind.TooLarge, message, "upload_too_large");

    private static ApiError TooSlow(string message) => new(ErrorKind.TooSlow, message, "upload_too_slow");
}

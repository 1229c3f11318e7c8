using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace EmbeddingService.Indexing;

/// <summary>How images named by URL are fetched (<c>index --manifest</c>); the command line sets them.</summary>
/// <param name="Concurrency">Downloads at once, over all hosts.</param>
/// <param name="PerHost">Connections to one host at once: a shop's image server is not ours to flood.</param>
/// <param name="ConnectTimeout">To open a connection.</param>
/// <param name="ReadTimeout">For the headers, and between two reads of the body: a server that stalls is given up on.</param>
/// <param name="Retries">Further tries after a timeout, a connection failure, 408, 429 or 5xx (never after another 4xx).</param>
/// <param name="MaxRedirects">Redirects followed; more is a loop.</param>
/// <param name="MaxBytes">An image's largest size (MAX_UPLOAD_BYTES, as for an upload).</param>
public sealed record FetchOptions(int Concurrency, int PerHost, TimeSpan ConnectTimeout, TimeSpan ReadTimeout, int Retries, int MaxRedirects, long MaxBytes);

/// <summary>An image's bytes (pooled: <see cref="Dispose"/> gives them back), or why there are none.</summary>
public sealed class Fetched : IDisposable
{
    private byte[]? _buffer;

    private Fetched(byte[]? buffer, int length, string? failure) => (_buffer, Length, Failure) = (buffer, length, failure);

    public int Length { get; }

    /// <summary>Why the image could not be had: a sentence the summary prints after the item's name.</summary>
    public string? Failure { get; }

    public ReadOnlyMemory<byte> Bytes => _buffer.AsMemory(0, Length);

    public static Fetched Of(byte[] buffer, int length) => new(buffer, length, null);

    public static Fetched Failed(string reason) => new(null, 0, reason);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer) ArrayPool<byte>.Shared.Return(buffer);
    }
}

/// <summary>
/// Fetches images over http(s) the way a crawler that must not hang does: a connect timeout and a read timeout that
/// restarts with every chunk (a stalled server ends in seconds, not never), a per-host connection limit, redirects
/// bounded, the size bounded before and while reading, and retries with exponential backoff (honouring Retry-After up
/// to a bound) only where another try can help.
/// </summary>
public sealed class ImageFetcher : IDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LongestRetryAfter = TimeSpan.FromSeconds(30);

    private readonly HttpClient _client;
    private readonly FetchOptions _options;

    public ImageFetcher(FetchOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            MaxConnectionsPerServer = options.PerHost,
            AllowAutoRedirect = true,
            MaxAutomaticRedirections = options.MaxRedirects,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        {
            // Each phase has its own timeout below; a whole-request one would cut a slow but moving large image.
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd("embedding-service-indexer/1.0");
    }

    /// <summary>Whether <paramref name="text"/> is an absolute http(s) URL, the only kind fetched.</summary>
    public static bool TryParseUrl(string? text, out Uri url)
    {
        url = null!;
        return Uri.TryCreate(text, UriKind.Absolute, out var parsed) && (parsed.Scheme == Uri.UriSchemeHttp || parsed.Scheme == Uri.UriSchemeHttps)
            && (url = parsed) is not null;
    }

    public async Task<Fetched> FetchAsync(Uri url, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(url);
        string failure;
        var attempt = 0;
        while (true)
        {
            TimeSpan? retryAfter = null;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.ReadTimeout);
                using var response = await _client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                var status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode) return await ReadBodyAsync(response, timeout);
                failure = status is >= 300 and < 400
                    ? $"HTTP {status}: more than {_options.MaxRedirects} redirects, or one to a place not fetched (not http(s), or https to http)"
                    : $"HTTP {status} {response.ReasonPhrase}";
                if (!(status is 408 or 429 || status >= 500)) return Fetched.Failed(failure);
                retryAfter = response.Headers.RetryAfter?.Delta ?? (response.Headers.RetryAfter?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failure = $"no answer within {_options.ReadTimeout.TotalSeconds:0.#} s (the server stalled)";
            }
            catch (HttpRequestException e)
            {
                failure = e.InnerException is SocketException socket ? $"cannot connect ({socket.SocketErrorCode})" : $"the request failed ({e.Message})";
                if (e.HttpRequestError is HttpRequestError.NameResolutionError) return Fetched.Failed(failure);
            }
            catch (IOException e)
            {
                failure = $"the connection broke ({e.Message})";
            }

            if (attempt++ >= _options.Retries) return Fetched.Failed($"{failure}; tried {attempt} times");
            var backoff = FirstBackoff * Math.Pow(2, attempt - 1) * (0.75 + (Random.Shared.NextDouble() / 2));
            if (retryAfter is { } asked && asked > backoff) backoff = asked < LongestRetryAfter ? asked : LongestRetryAfter;
            await Task.Delay(backoff, cancellationToken);
        }
    }

    private async Task<Fetched> ReadBodyAsync(HttpResponseMessage response, CancellationTokenSource timeout)
    {
        if (response.Content.Headers.ContentLength is { } declared && declared > _options.MaxBytes)
        {
            return Fetched.Failed($"the image is larger than the limit of {_options.MaxBytes:N0} bytes (MAX_UPLOAD_BYTES): {declared:N0} bytes");
        }

        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(_options.MaxBytes + 1, response.Content.Headers.ContentLength + 1 ?? 64 * 1024));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > _options.MaxBytes) break;
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(_options.MaxBytes + 1, (long)buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                // The read timeout restarts with every chunk: slow is fine, stopped is not.
                timeout.CancelAfter(_options.ReadTimeout);
                var read = await body.ReadAsync(buffer.AsMemory(length), timeout.Token);
                if (read == 0) break;
                length += read;
            }

            if (length > _options.MaxBytes)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return Fetched.Failed($"the image is larger than the limit of {_options.MaxBytes:N0} bytes (MAX_UPLOAD_BYTES)");
            }

            return Fetched.Of(buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    public void Dispose() => _client.Dispose();
}

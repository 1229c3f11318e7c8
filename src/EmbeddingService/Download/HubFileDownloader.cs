using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using EmbeddingService.Model;
using Microsoft.Extensions.Logging;

namespace EmbeddingService.Download;

/// <summary>
/// Fetches a model directory from a Hugging Face hub: <c>{endpoint}/{repo}/resolve/{revision}/{path}</c>.
/// Each file goes to <c>NAME.incomplete</c>, resumes with Range, is checked against the SHA-256 the hub
/// announces (<c>X-Linked-Etag</c>, else <c>ETag</c>) and is renamed into place only once whole, so a
/// directory never holds a partial file under a final name.
/// </summary>
public sealed partial class HubFileDownloader(HttpClient http, ModelOptions options, ILogger<HubFileDownloader> logger)
{
    private const int MaxRedirects = 10;
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(2);

    /// <summary>Creates a client that does not follow redirects itself, so the hub's headers can be read.</summary>
    public static HttpClient CreateClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(15) })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public async Task DownloadAsync(ModelFiles files, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(files);
        try
        {
            Directory.CreateDirectory(Path.Combine(files.Root, "onnx"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw CannotWrite(files.Root, e);
        }

        foreach (var relative in files.RelativePaths)
        {
            var target = files.PathOf(relative);
            if (!File.Exists(target))
            {
                await DownloadFileAsync(relative, target, cancellationToken);
            }
        }
    }

    private async Task DownloadFileAsync(string relative, string target, CancellationToken cancellationToken)
    {
        var url = new Uri($"{options.HubEndpoint.TrimEnd('/')}/{options.Repository}/resolve/{Uri.EscapeDataString(options.Revision)}/{relative}");
        var partial = target + ".incomplete";
        string? lastError = null;
        for (var attempt = 1; attempt <= options.DownloadAttempts; attempt++)
        {
            try
            {
                await FetchAsync(url, relative, partial, cancellationToken);
                LocalWrite(partial, () => File.Move(partial, target, overwrite: true));
                return;
            }
            catch (RetryableDownloadException e)
            {
                lastError = e.Message;
            }
            catch (HttpRequestException e)
            {
                lastError = e.Message;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastError = $"no data for {options.DownloadStallTimeoutSeconds} s";
            }
            catch (IOException e)
            {
                // Local file errors were already turned into ModelDownloadException; this is the network.
                lastError = $"connection lost ({e.Message})";
            }

            if (attempt < options.DownloadAttempts)
            {
                var delay = TimeSpan.FromMilliseconds(options.DownloadRetryDelayMs * Math.Pow(2, attempt - 1));
                LogRetry(logger, relative, attempt, options.DownloadAttempts, lastError, delay.TotalSeconds);
                await Task.Delay(delay, cancellationToken);
            }
        }

        throw Failed($"{relative}: {lastError} (gave up after {options.DownloadAttempts} attempts)");
    }

    private async Task FetchAsync(Uri url, string relative, string partial, CancellationToken cancellationToken)
    {
        var existing = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        var (response, expectedSha256) = await SendFollowingRedirectsAsync(url, existing, cancellationToken);
        using (response)
        {
            switch (response.StatusCode)
            {
                case HttpStatusCode.NotFound:
                    throw Failed($"{url} answered 404: {options.Repository} at revision {options.Revision} has no {relative}");
                case HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden:
                    throw Failed($"{url} answered {(int)response.StatusCode}: set HF_TOKEN to a token that may read {options.Repository}");
                case HttpStatusCode.RequestedRangeNotSatisfiable:
                    File.Delete(partial);
                    throw new RetryableDownloadException($"{url} refused to resume at byte {existing}; starting over");
                case HttpStatusCode.OK:
                    existing = 0;
                    break;
                case HttpStatusCode.PartialContent when response.Content.Headers.ContentRange?.From == existing:
                    break;
                case HttpStatusCode.PartialContent:
                    File.Delete(partial);
                    throw new RetryableDownloadException($"{url} resumed at the wrong offset");
                default:
                    throw new RetryableDownloadException($"{url} answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            var total = response.Content.Headers.ContentLength is { } length ? existing + length : (long?)null;
            await CopyBodyAsync(response, relative, partial, existing, total, cancellationToken);
        }

        if (expectedSha256 is not null)
        {
            var actual = await Sha256Async(partial, cancellationToken);
            if (!actual.Equals(expectedSha256, StringComparison.OrdinalIgnoreCase))
            {
                File.Delete(partial);
                throw new RetryableDownloadException($"SHA-256 mismatch: expected {expectedSha256}, got {actual}");
            }
        }
    }

    private async Task CopyBodyAsync(HttpResponseMessage response, string relative, string partial, long existing, long? total, CancellationToken cancellationToken)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        await using var file = LocalWrite(partial, () => new FileStream(partial, existing > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1, useAsync: true));
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            var written = existing;
            var clock = Stopwatch.StartNew();
            var lastReport = TimeSpan.Zero;
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            int read;
            while (true)
            {
                stall.CancelAfter(StallTimeout);
                read = await body.ReadAsync(buffer, stall.Token);
                if (read == 0)
                {
                    break;
                }

                try
                {
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }
                catch (IOException e)
                {
                    throw CannotWrite(partial, e);
                }

                written += read;
                if (clock.Elapsed - lastReport >= ProgressInterval)
                {
                    lastReport = clock.Elapsed;
                    Report(relative, written, existing, total, clock.Elapsed);
                }
            }

            if (total is { } expected && written != expected)
            {
                throw new RetryableDownloadException($"connection closed after {written} of {expected} bytes");
            }

            Report(relative, written, existing, total ?? written, clock.Elapsed);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Report(string relative, long written, long resumedFrom, long? total, TimeSpan elapsed)
    {
        var megabytesPerSecond = (written - resumedFrom) / 1e6 / Math.Max(elapsed.TotalSeconds, 1e-3);
        var percent = total is > 0 ? 100.0 * written / total.Value : 100.0;
        LogProgress(logger, relative, percent, written / 1e6, (total ?? written) / 1e6, megabytesPerSecond);
    }

    /// <summary>
    /// Follows redirects by hand: the hub's first answer carries the file's hash, and the bearer token must
    /// not travel to the storage host the hub redirects to.
    /// </summary>
    private async Task<(HttpResponseMessage Response, string? Sha256)> SendFollowingRedirectsAsync(Uri url, long offset, CancellationToken cancellationToken)
    {
        string? sha256 = null;
        for (var hop = 0; hop <= MaxRedirects; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (offset > 0)
            {
                request.Headers.Range = new RangeHeaderValue(offset, null);
            }

            if (options.HubToken is { Length: > 0 } token && hop == 0)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stall.CancelAfter(StallTimeout);
            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stall.Token);
            sha256 ??= Sha256From(response);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                response.Dispose();
                url = location.IsAbsoluteUri ? location : new Uri(url, location);
                continue;
            }

            return (response, sha256);
        }

        throw new RetryableDownloadException($"more than {MaxRedirects} redirects");
    }

    /// <summary>Git LFS files carry their SHA-256 as the ETag; small git files carry a 40-digit SHA-1, not checked.</summary>
    private static string? Sha256From(HttpResponseMessage response)
    {
        foreach (var header in new[] { "X-Linked-Etag", "ETag" })
        {
            if (response.Headers.TryGetValues(header, out var values))
            {
                var tag = values.First().Trim();
                if (tag.StartsWith("W/", StringComparison.Ordinal))
                {
                    tag = tag[2..];
                }

                tag = tag.Trim('"');
                if (tag.Length == 64 && tag.All(Uri.IsHexDigit))
                {
                    return tag;
                }
            }
        }

        return null;
    }

    private TimeSpan StallTimeout => TimeSpan.FromSeconds(options.DownloadStallTimeoutSeconds);

    private static async Task<string> Sha256Async(string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
    }

    private static T LocalWrite<T>(string path, Func<T> write)
    {
        try
        {
            return write();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CannotWrite(path, e);
        }
    }

    private static void LocalWrite(string path, Action write) => LocalWrite(path, () =>
    {
        write();
        return true;
    });

    private static ModelDownloadException CannotWrite(string path, Exception e) =>
        new($"Cannot write {path}: {e.Message} Set MODEL_DIR to a writable directory.", e);

    private ModelDownloadException Failed(string reason) => new(
        $"Could not download the model {options.Repository}@{options.Revision} from {options.HubEndpoint}: {reason}. " +
        "Offline? Point MODEL_DIR at a model directory in the layout of Xenova/clip-vit-base-patch32, or generate a synthetic one " +
        "(random weights, for tests only): dotnet run --project tools/SyntheticModel -- --preset vit-b32 --seed 1 --out DIR");

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloading {File}: {Percent:F0}% ({Done:F1} of {Total:F1} MB, {Speed:F1} MB/s)")]
    private static partial void LogProgress(ILogger logger, string file, double percent, double done, double total, double speed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Downloading {File} failed (attempt {Attempt} of {Attempts}): {Reason}; retrying in {Delay:F1} s")]
    private static partial void LogRetry(ILogger logger, string file, int attempt, int attempts, string? reason, double delay);

    private sealed class RetryableDownloadException(string message) : Exception(message);
}

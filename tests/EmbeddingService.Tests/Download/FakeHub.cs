using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Download;

/// <summary>
/// A Hugging Face hub on 127.0.0.1: <c>/{repo}/resolve/{revision}/{path}</c> answers 302 to a blob URL with the
/// SHA-256 in <c>X-Linked-Etag</c> for ONNX files (as git LFS files are served), or the content with a
/// SHA-1 <c>ETag</c> for small files. Blobs honour Range. Faults are injected per file.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, byte[]> _files;

    private FakeHub(WebApplication app, Dictionary<string, byte[]> files)
    {
        _app = app;
        _files = files;
    }

    public string Endpoint { get; private set; } = string.Empty;

    public ConcurrentQueue<(string Path, string? Range, string? Authorization)> Requests { get; } = new();

    public ConcurrentDictionary<string, int> FailuresLeft { get; } = new();

    public ConcurrentDictionary<string, int> CutsLeft { get; } = new();

    public ConcurrentDictionary<string, bool> WrongHash { get; } = new();

    public ConcurrentDictionary<string, int> StallsLeft { get; } = new();

    public HashSet<string> Missing { get; } = [];

    public static async Task<FakeHub> StartAsync(string repository, string revision, Dictionary<string, byte[]> files)
    {
        FakeHub? hub = null;
        var (_, endpoint) = await LocalWebServer.StartAsync(app =>
        {
            hub = new FakeHub(app, files);
            app.MapGet($"/{repository}/resolve/{revision}/{{**path}}", hub.Resolve);
            app.MapGet("/blobs/{**path}", hub.Blob);
        });
        hub!.Endpoint = endpoint;
        return hub;
    }

    public int RequestsFor(string path) => Requests.Count(r => r.Path.EndsWith(path, StringComparison.Ordinal));

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    private async Task Resolve(HttpContext context, string path)
    {
        Log(context, "resolve/" + path);
        if (Missing.Contains(path) || !_files.TryGetValue(path, out var content))
        {
            context.Response.StatusCode = 404;
            return;
        }

        if (path.EndsWith(".onnx", StringComparison.Ordinal))
        {
            var sha = Convert.ToHexStringLower(SHA256.HashData(WrongHash.ContainsKey(path) ? [.. content, 1] : content));
            context.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            context.Response.Headers["X-Linked-Size"] = content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers.ETag = "\"0123456789abcdef0123456789abcdef01234567\"";
            context.Response.Redirect($"/blobs/{path}");
            return;
        }

#pragma warning disable CA5350 // The hub names small git files by their git SHA-1; the test imitates it.
        context.Response.Headers.ETag = $"\"{Convert.ToHexStringLower(SHA1.HashData(content))}\"";
#pragma warning restore CA5350
        await context.Response.Body.WriteAsync(content);
    }

    private async Task Blob(HttpContext context, string path)
    {
        Log(context, "blobs/" + path);
        var content = _files[path];
        if (FailuresLeft.TryGetValue(path, out var failures) && failures > 0)
        {
            FailuresLeft[path] = failures - 1;
            context.Response.StatusCode = 500;
            return;
        }

        var start = 0;
        if (context.Request.Headers.Range.ToString() is { Length: > 0 } range && range.StartsWith("bytes=", StringComparison.Ordinal))
        {
            start = int.Parse(range[6..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {start}-{content.Length - 1}/{content.Length}";
        }

        context.Response.ContentLength = content.Length - start;
        if (CutsLeft.TryGetValue(path, out var cuts) && cuts > 0)
        {
            CutsLeft[path] = cuts - 1;
            var half = (content.Length - start) / 2;
            await context.Response.Body.WriteAsync(content.AsMemory(start, half));
            await context.Response.Body.FlushAsync();
            context.Abort();
            return;
        }

        if (StallsLeft.TryGetValue(path, out var stalls) && stalls > 0)
        {
            StallsLeft[path] = stalls - 1;
            var half = (content.Length - start) / 2;
            await context.Response.Body.WriteAsync(content.AsMemory(start, half));
            await context.Response.Body.FlushAsync();
            // Silent until the client gives up on the connection.
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            return;
        }

        await context.Response.Body.WriteAsync(content.AsMemory(start));
    }

    private void Log(HttpContext context, string path) =>
        Requests.Enqueue((path, context.Request.Headers.Range.ToString() is { Length: > 0 } r ? r : null,
            context.Request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null));
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Operations;

/// <summary>SIGTERM under load: requests in flight are answered, new ones are told to go elsewhere, the process exits in time.</summary>
[Collection(TinyModelGroup.Name)]
public sealed partial class GracefulStopTests(TinyModelFixture tiny, ITestOutputHelper output)
{
    private const int TimeoutSeconds = 10;

    [Fact]
    public async Task On_sigterm_under_8_clients_every_admitted_request_is_answered_and_the_process_exits_in_time()
    {
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "info",
            ["SHUTDOWN_TIMEOUT_S"] = TimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        // Large enough that decoding keeps requests in flight at any moment.
        var image = LargeJpeg();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
        // Each outcome with when its answer came (Stopwatch ticks), to tell answers before the signal from after.
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<(string Outcome, long AnsweredAt)>();
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var outcome = await SendAsync(http, image);
                outcomes.Add((outcome, Stopwatch.GetTimestamp()));
            }
        })).ToList();

        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Contains(outcomes, o => o.Outcome == "200");

        // One upload is half sent when the signal comes: the drain waits for it, which keeps the window open in
        // which new requests must be told to go elsewhere.
        await using var slow = await SlowUpload.StartAsync(port, image);
        await Task.Delay(300);
        var clock = Stopwatch.StartNew();
        var signalAt = Stopwatch.GetTimestamp();
        await service.TerminateAsync();
        var readiness = await ProbeAsync(http);
        using (var fresh = new HttpClient { BaseAddress = http.BaseAddress })
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal("503 retry", await SendAsync(fresh, image));
            }

            // Still sending its body when the drain refuses it: the 503 arrives, not a reset. 640 KB in 32 KiB pieces
            // 20 ms apart keeps each well inside the drain, which the half-sent upload holds open.
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal("503 retry", await SendAsync(fresh, image[..Math.Min(image.Length, 640 * 1024)], trickle: true));
            }
        }

        var slowAnswer = await slow.FinishAsync();
        var exitCode = await service.WaitForExitAsync(TimeSpan.FromSeconds(TimeoutSeconds + 5));
        var exitSeconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(clients);

        var drained = DrainedLine().Match(service.Log);
        output.WriteLine($"readiness right after SIGTERM: {readiness}; exit code {exitCode} after {exitSeconds:F2} s; {drained.Value}");
        output.WriteLine(string.Join(", ", outcomes.GroupBy(o => (o.Outcome, After: o.AnsweredAt > signalAt)).Select(g => $"{g.Key}: {g.Count()}")));
        Assert.StartsWith("HTTP/1.1 200", slowAnswer, StringComparison.Ordinal);
        Assert.Contains("\"embedding\"", slowAnswer, StringComparison.Ordinal);
        Assert.Equal(0, exitCode);
        Assert.InRange(exitSeconds, 0, TimeoutSeconds);
        Assert.True(drained.Success, service.Log);
        var inFlight = int.Parse(drained.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(inFlight > 1, "no client request was in flight at the signal");
        // Until the signal every answer was an embedding. The requests in flight at the signal (the server counts
        // them, the half-sent upload among them) all got theirs after it. Otherwise, after the signal: a 503 with
        // Retry-After for what arrived while draining, or a refused or closed connection once the server had
        // closed; never a 5xx of another kind, never a broken answer.
        Assert.All(outcomes.Where(o => o.AnsweredAt < signalAt), o => Assert.Equal("200", o.Outcome));
        Assert.True(outcomes.Count(o => o.AnsweredAt > signalAt && o.Outcome == "200") >= inFlight - 1, "an admitted request was not answered");
        Assert.All(outcomes.Where(o => o.AnsweredAt > signalAt), o => Assert.True(
            o.Outcome is "200" or "503 retry" or "refused" || o.Outcome.StartsWith("failed:", StringComparison.Ordinal), o.Outcome));
        Assert.Equal("503", readiness);
    }

    private static async Task<string> SendAsync(HttpClient http, byte[] image, bool trickle = false)
    {
        try
        {
            using var form = Api.ServiceFactory.Form(image);
            using var response = await http.PostAsync(new Uri("/embed-image", UriKind.Relative), trickle ? new TrickledContent(await form.ReadAsByteArrayAsync(), form.Headers.ContentType!) : form);
            var body = await response.Content.ReadAsStringAsync();
            return response.StatusCode switch
            {
                HttpStatusCode.OK when body.Contains("\"embedding\"", StringComparison.Ordinal) => "200",
                HttpStatusCode.ServiceUnavailable when response.Headers.RetryAfter is not null && body.Contains("shutting down", StringComparison.Ordinal) => "503 retry",
                var status => $"{(int)status}: {body}",
            };
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return "refused";
        }
        catch (HttpRequestException e)
        {
            return $"failed: {e.Message} {e.InnerException?.Message}";
        }
    }

    /// <summary>A body sent in 32 KiB pieces 20 ms apart, so it is still arriving when the answer comes.</summary>
    private sealed class TrickledContent : HttpContent
    {
        private readonly byte[] _body;

        public TrickledContent(byte[] body, System.Net.Http.Headers.MediaTypeHeaderValue contentType)
        {
            _body = body;
            Headers.ContentType = contentType;
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (var offset = 0; offset < _body.Length; offset += 32 * 1024)
            {
                await stream.WriteAsync(_body.AsMemory(offset, Math.Min(32 * 1024, _body.Length - offset)));
                await stream.FlushAsync();
                await Task.Delay(20);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _body.Length;
            return true;
        }
    }

    /// <summary>An upload over a raw socket whose second half is sent only when asked.</summary>
    private sealed class SlowUpload : IAsyncDisposable
    {
        private readonly TcpClient _client;
        private readonly byte[] _rest;

        private SlowUpload(TcpClient client, byte[] rest)
        {
            _client = client;
            _rest = rest;
        }

        public static async Task<SlowUpload> StartAsync(int port, byte[] image)
        {
            using var form = Api.ServiceFactory.Form(image);
            var body = await form.ReadAsByteArrayAsync();
            var head = System.Text.Encoding.ASCII.GetBytes(
                $"POST /embed-image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {form.Headers.ContentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
            var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            var half = body.Length / 2;
            await client.GetStream().WriteAsync(head);
            await client.GetStream().WriteAsync(body.AsMemory(0, half));
            return new SlowUpload(client, body[half..]);
        }

        public async Task<string> FinishAsync()
        {
            var stream = _client.GetStream();
            await stream.WriteAsync(_rest);
            using var reader = new StreamReader(stream);
            return await reader.ReadToEndAsync();
        }

        public ValueTask DisposeAsync()
        {
            _client.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private static async Task<string> ProbeAsync(HttpClient http)
    {
        for (var i = 0; i < 50; i++)
        {
            try
            {
                using var ready = await http.GetAsync(new Uri("/health/ready", UriKind.Relative));
                if (ready.StatusCode != HttpStatusCode.OK) return ((int)ready.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException)
            {
                return "refused";
            }

            await Task.Delay(10);
        }

        return "still ready";
    }

    private static byte[] LargeJpeg()
    {
        using var bitmap = new SkiaSharp.SKBitmap(2400, 1800);
        var random = new Random(7);
        var pixels = bitmap.GetPixelSpan();
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(pixels).ToArray().AsSpan());
        using var canvas = new SkiaSharp.SKCanvas(bitmap);
        for (var i = 0; i < 400; i++)
        {
            using var paint = new SkiaSharp.SKPaint { Color = new SkiaSharp.SKColor((uint)random.Next() | 0xFF000000) };
            canvas.DrawCircle(random.Next(2400), random.Next(1800), random.Next(10, 200), paint);
        }

        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 92);
        return data.ToArray();
    }

    [GeneratedRegex(@"Drained: the (\d+) requests in flight at the signal were answered in (\d+) ms")]
    private static partial Regex DrainedLine();
}

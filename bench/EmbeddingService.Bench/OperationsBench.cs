using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

namespace EmbeddingService.Bench;

/// <summary>
/// What an operator sees: /metrics after load (an excerpt is printed), then SIGTERM under 8 clients: requests in
/// flight at the signal, how each client request ended, and the time to exit.
/// </summary>
internal static partial class OperationsBench
{
    private const int ShutdownTimeoutSeconds = 30;

    public static async Task RunAsync(BenchOptions options, string modelDirectory, byte[] image, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var environment = new Dictionary<string, string>(settings)
        {
            ["LOG_LEVEL"] = "info",
            ["SHUTDOWN_TIMEOUT_S"] = ShutdownTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        await using var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, environment);
        await HttpLoad.RunAsync(service.Address, image, 8, 1.5);
        var images = await HttpLoad.RunAsync(service.Address, image, 8, options.Seconds);
        var texts = await HttpLoad.RunTextAsync(service.Address, TextBench.Query, 8, options.Seconds / 2);
        report.Add("before the stop: 640x480 JPEG, 8 clients", Report.F(images.ImagesPerSecond), Report.F(images.Percentile(0.5)), "", "", images.FailureSummary);
        report.Add("before the stop: 3-word text, 8 clients", Report.F(texts.ImagesPerSecond), Report.F(texts.Percentile(0.5)), "", "", texts.FailureSummary);

        using var http = new HttpClient { BaseAddress = service.Address, Timeout = TimeSpan.FromMinutes(1) };
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Console.WriteLine("/metrics excerpt after the load above:");
        foreach (var line in metrics.Split('\n').Where(Interesting))
        {
            Console.WriteLine("    " + line);
        }

        // SIGTERM while 8 clients keep sending.
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<(string Outcome, bool BeforeSignal)>();
        long signalled = 0;
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var before = Interlocked.Read(ref signalled) == 0;
                outcomes.Add((await SendAsync(http, image), before));
            }
        })).ToList();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Interlocked.Exchange(ref signalled, 1);
        var clock = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", service.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var exited = await service.WaitForExitAsync(TimeSpan.FromSeconds(ShutdownTimeoutSeconds + 10));
        var exitSeconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(clients);
        var drained = Drained().Match(service.Output);
        string Count(Func<(string Outcome, bool BeforeSignal), bool> which) => outcomes.Count(which).ToString(System.Globalization.CultureInfo.InvariantCulture);
        report.Add("SIGTERM under 8 clients (640x480 JPEG)", $"exit {Report.F(exitSeconds, 2)} s", "", "", "",
            $"exit code {exited?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none (killed)"}; in flight at the signal and answered: " +
            $"{(drained.Success ? $"{drained.Groups[1].Value} in {drained.Groups[2].Value} ms" : "no drain line")}; " +
            $"sent before the signal: {Count(o => o.BeforeSignal && o.Outcome == "200")} x 200, {Count(o => o.BeforeSignal && o.Outcome != "200")} otherwise; " +
            $"after: {Count(o => !o.BeforeSignal && o.Outcome == "200")} x 200, {Count(o => !o.BeforeSignal && o.Outcome == "503")} x 503 + Retry-After, " +
            $"{Count(o => !o.BeforeSignal && o.Outcome == "refused")} refused connections, {Count(o => !o.BeforeSignal && o.Outcome == "closed")} closed connections");
    }

    private static bool Interesting(string line) =>
        !line.StartsWith('#') && (line.StartsWith("embedding_", StringComparison.Ordinal)
            ? !line.Contains("_bucket{", StringComparison.Ordinal)
            : (line.StartsWith("http_server_request_duration_seconds_count", StringComparison.Ordinal) && line.Contains("/embed-", StringComparison.Ordinal))
                || line.StartsWith("dotnet_process_memory_working_set_bytes", StringComparison.Ordinal)
                || line.StartsWith("dotnet_gc_collections_total", StringComparison.Ordinal));

    private static async Task<string> SendAsync(HttpClient http, byte[] image)
    {
        try
        {
            using var form = new MultipartFormDataContent();
            var file = new ByteArrayContent(image);
            file.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("image/jpeg");
            form.Add(file, "file", "image.jpg");
            using var response = await http.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
            return response.StatusCode switch
            {
                HttpStatusCode.OK => "200",
                HttpStatusCode.ServiceUnavailable when response.Headers.RetryAfter is not null => "503",
                var status => ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
        }
        catch (HttpRequestException e) when (e.InnerException is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused })
        {
            return "refused";
        }
        catch (HttpRequestException)
        {
            return "closed";
        }
    }

    [GeneratedRegex(@"Drained: the (\d+) requests in flight at the signal were answered in (\d+) ms")]
    private static partial Regex Drained();
}

using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace EmbeddingService.Bench;

internal sealed record LoadResult(int Succeeded, double Seconds, double[] SortedLatenciesMs, Dictionary<int, int> Failures, int UnavailableWithoutRetryAfter,
    Dictionary<string, double> MedianServerTimings, double MeanBatchSize)
{
    /// <summary>
    /// The service's own account (Server-Timing medians: receive, decode, preprocess, queue, inference) and the rest of
    /// the client's p50 (answer: the JSON written, HTTP both ways, the hops between them): where a request's time goes.
    /// </summary>
    public string Breakdown => MedianServerTimings.Count == 0 ? string.Empty
        : string.Join(", ", MedianServerTimings.Select(t => $"{t.Key} {t.Value:F1}")) +
          $", answer and HTTP {Percentile(0.5) - MedianServerTimings.Values.Sum():F1} ms; mean batch {MeanBatchSize:F1}";

    public double ImagesPerSecond => Succeeded / Seconds;

    public double Percentile(double p) => SortedLatenciesMs.Length == 0 ? double.NaN : SortedLatenciesMs[Math.Min(SortedLatenciesMs.Length - 1, (int)(p * SortedLatenciesMs.Length))];

    /// <summary>Two consecutive runs as one.</summary>
    public LoadResult Then(LoadResult next) => new(
        Succeeded + next.Succeeded,
        Seconds + next.Seconds,
        [.. SortedLatenciesMs.Concat(next.SortedLatenciesMs).Order()],
        Failures.Concat(next.Failures).GroupBy(f => f.Key).ToDictionary(g => g.Key, g => g.Sum(f => f.Value)),
        UnavailableWithoutRetryAfter + next.UnavailableWithoutRetryAfter,
        next.Succeeded > Succeeded ? next.MedianServerTimings : MedianServerTimings,
        next.Succeeded > Succeeded ? next.MeanBatchSize : MeanBatchSize);

    public string FailureSummary => Failures.Count == 0 ? "no errors" : string.Join(", ", Failures.OrderBy(f => f.Key).Select(f => $"{f.Value} x {f.Key}"));
}

/// <summary>Closed-loop clients posting one request each as soon as its previous answer came.</summary>
internal static class HttpLoad
{
    /// <summary>One image to /embed-image.</summary>
    public static Task<LoadResult> RunAsync(Uri service, byte[] image, int clients, double seconds, int maxRequests = int.MaxValue) =>
        RunAsync(service, "/embed-image", () =>
        {
            var form = new MultipartFormDataContent();
            var file = new ByteArrayContent(image);
            file.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
            form.Add(file, "file", "image.jpg");
            return form;
        }, clients, seconds, maxRequests);

    /// <summary>One text to /embed-text.</summary>
    public static Task<LoadResult> RunTextAsync(Uri service, string text, int clients, double seconds) =>
        RunAsync(service, "/embed-text", () => new StringContent(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = text }),
            System.Text.Encoding.UTF8, "application/json"), clients, seconds, int.MaxValue);

    public static async Task<LoadResult> RunAsync(Uri service, string path, Func<HttpContent> content, int clients, double seconds, int maxRequests)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        {
            BaseAddress = service,
            Timeout = TimeSpan.FromMinutes(5),
        };
        var latencies = new List<double>();
        var timings = new Dictionary<string, List<double>>();
        var batchSizes = new List<int>();
        var failures = new Dictionary<int, int>();
        var missingRetryAfter = 0;
        var issued = 0;
        var clock = Stopwatch.StartNew();
        async Task Client()
        {
            while (clock.Elapsed.TotalSeconds < seconds && Interlocked.Increment(ref issued) <= maxRequests)
            {
                using var body = content();
                var start = clock.Elapsed.TotalMilliseconds;
                using var response = await http.PostAsync(new Uri(path, UriKind.Relative), body);
                await response.Content.ReadAsByteArrayAsync();
                var elapsed = clock.Elapsed.TotalMilliseconds - start;
                lock (latencies)
                {
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        latencies.Add(elapsed);
                        Collect(response, timings, batchSizes);
                    }
                    else
                    {
                        failures[(int)response.StatusCode] = failures.GetValueOrDefault((int)response.StatusCode) + 1;
                        if (response.StatusCode == HttpStatusCode.ServiceUnavailable && response.Headers.RetryAfter is null) missingRetryAfter++;
                    }
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(Client)));
        var total = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        var medians = timings.ToDictionary(t => t.Key, t => t.Value.Order().ElementAt(t.Value.Count / 2));
        return new LoadResult(latencies.Count, total, [.. latencies], failures, missingRetryAfter, medians, batchSizes.Count == 0 ? 0 : batchSizes.Average());
    }

    private static void Collect(HttpResponseMessage response, Dictionary<string, List<double>> timings, List<int> batchSizes)
    {
        if (!response.Headers.TryGetValues("Server-Timing", out var values)) return;
        foreach (var metric in string.Join(",", values).Split(',', StringSplitOptions.TrimEntries))
        {
            var parts = metric.Split(';');
            var duration = parts.FirstOrDefault(p => p.StartsWith("dur=", StringComparison.Ordinal));
            if (duration is not null)
            {
                if (!timings.TryGetValue(parts[0], out var list)) timings[parts[0]] = list = [];
                list.Add(double.Parse(duration[4..], System.Globalization.CultureInfo.InvariantCulture));
            }

            var batch = parts.FirstOrDefault(p => p.StartsWith("desc=\"batch of ", StringComparison.Ordinal));
            if (batch is not null) batchSizes.Add(int.Parse(batch[15..].TrimEnd('"'), System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}

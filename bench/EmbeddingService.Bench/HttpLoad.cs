using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace EmbeddingService.Bench;

internal sealed record LoadResult(int Succeeded, double Seconds, double[] SortedLatenciesMs, Dictionary<int, int> Failures, int UnavailableWithoutRetryAfter)
{
    public double ImagesPerSecond => Succeeded / Seconds;

    public double Percentile(double p) => SortedLatenciesMs.Length == 0 ? double.NaN : SortedLatenciesMs[Math.Min(SortedLatenciesMs.Length - 1, (int)(p * SortedLatenciesMs.Length))];

    public string FailureSummary => Failures.Count == 0 ? "no errors" : string.Join(", ", Failures.OrderBy(f => f.Key).Select(f => $"{f.Value} x {f.Key}"));
}

/// <summary>Closed-loop clients posting one image to /embed-image, each as soon as its previous answer came.</summary>
internal static class HttpLoad
{
    public static async Task<LoadResult> RunAsync(Uri service, byte[] image, int clients, double seconds, int maxRequests = int.MaxValue)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        {
            BaseAddress = service,
            Timeout = TimeSpan.FromMinutes(5),
        };
        var latencies = new List<double>();
        var failures = new Dictionary<int, int>();
        var missingRetryAfter = 0;
        var issued = 0;
        var clock = Stopwatch.StartNew();
        async Task Client()
        {
            while (clock.Elapsed.TotalSeconds < seconds && Interlocked.Increment(ref issued) <= maxRequests)
            {
                using var form = new MultipartFormDataContent();
                var file = new ByteArrayContent(image);
                file.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
                form.Add(file, "file", "image.jpg");
                var start = clock.Elapsed.TotalMilliseconds;
                using var response = await http.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
                await response.Content.ReadAsByteArrayAsync();
                var elapsed = clock.Elapsed.TotalMilliseconds - start;
                lock (latencies)
                {
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        latencies.Add(elapsed);
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
        return new LoadResult(latencies.Count, total, [.. latencies], failures, missingRetryAfter);
    }
}

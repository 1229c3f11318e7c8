using System.Diagnostics;
using System.Net;
using System.Text;

namespace EmbeddingService.Bench;

/// <summary>
/// <c>--indexing</c>: the index command over one input as one process, as two shards at once, and from a manifest of
/// URLs served on 127.0.0.1, in images/s against the service's 8-client throughput on the same photos; the indexer's
/// peak memory (for the Job's resources); and what bounding keep-alive connections costs the service.
/// </summary>
internal static class IndexingBench
{
    private const int Photos = 240;

    public static async Task RunAsync(BenchOptions options, string modelDirectory, byte[] phone, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var server = Environment.GetEnvironmentVariable("BENCH_DATABASE_URL")
            ?? throw new InvalidOperationException("BENCH_DATABASE_URL is not set (scripts/bench.sh starts PostgreSQL and sets it).");
        using var folder = new StorageBench.TemporaryFolder();
        await StorageBench.WritePhotosAsync(phone, folder.Path, Photos);

        double service8;
        await using (var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, settings))
        {
            var jpeg = await File.ReadAllBytesAsync(Path.Combine(folder.Path, "p000.jpg"));
            await HttpLoad.RunAsync(service.Address, jpeg, 8, 1.5);
            service8 = (await HttpLoad.RunAsync(service.Address, jpeg, 8, options.Seconds)).ImagesPerSecond;
            report.Add("service, 8 clients, 640x480 JPEG (the reference for the rows below)", Report.F(service8), "", "", "", "");
        }

        var one = await IndexAsync(options, modelDirectory, settings, await StorageBench.CreateDatabaseAsync(server, "bench_index_one"), [[folder.Path]]);
        Add(report, $"index FOLDER, {Photos} JPEGs, one process", one, service8);

        var two = await IndexAsync(options, modelDirectory, settings, await StorageBench.CreateDatabaseAsync(server, "bench_index_two"),
            [[folder.Path, "--shard", "0/2"], [folder.Path, "--shard", "1/2"]]);
        Add(report, $"index FOLDER --shard 0/2 and 1/2 at once, {Photos} JPEGs, one machine", two, service8);

        using var images = new FileServer(folder.Path);
        var manifest = Path.Combine(folder.Path, "manifest.jsonl");
        await File.WriteAllLinesAsync(manifest, Enumerable.Range(0, Photos).Select(i => $"{{\"id\": \"p{i:D3}.jpg\", \"url\": \"{images.Address}p{i:D3}.jpg\"}}"));
        var fetched = await IndexAsync(options, modelDirectory, settings, await StorageBench.CreateDatabaseAsync(server, "bench_index_urls"), [["--manifest", manifest]]);
        Add(report, $"index --manifest, {Photos} URLs on 127.0.0.1, one process", fetched, service8);
        report.Add("  manifest / folder, one process", Report.F(fetched.Rate / one.Rate, 2), "", "", "", "target >= 0.9");

        await ConnectionLifetimeAsync(options, modelDirectory, settings, report);
    }

    private static void Add(Report report, string name, (double Rate, double PeakMiB, string Summary) run, double service8) =>
        report.Add(name, Report.F(run.Rate), "", "", "", $"{Report.F(run.Rate / service8, 2)}x the service at 8 clients; peak RSS {Report.F(run.PeakMiB, 0)} MiB per process; {run.Summary}");

    /// <summary>Runs the index command once per argument list, all at once; images/s over the wall time, and the largest peak RSS.</summary>
    internal static async Task<(double Rate, double PeakMiB, string Summary)> IndexAsync(BenchOptions options, string modelDirectory, IReadOnlyDictionary<string, string> settings,
        string database, string[][] runs)
    {
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(runs.Select(async arguments =>
        {
            var start = new ProcessStartInfo("dotnet", [Path.Combine(options.RepositoryRoot, "src", "EmbeddingService", "bin", "Release", "net10.0", "EmbeddingService.dll"), "index", .. arguments])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["DATABASE_URL"] = database;
            start.Environment["MODEL_DIR"] = modelDirectory;
            start.Environment["MODEL_AUTO_DOWNLOAD"] = "false";
            foreach (var (key, value) in settings) start.Environment[key] = value;
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            double peak = 0;
            while (!process.HasExited)
            {
                peak = Math.Max(peak, PeakMiB(process.Id));
                await Task.Delay(200);
            }

            await process.WaitForExitAsync();
            var summary = (await output).Split('\n').FirstOrDefault(l => l.StartsWith("indexed ", StringComparison.Ordinal))?.Trim() ?? $"exit {process.ExitCode}";
            return (Indexed: int.Parse(summary.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), Peak: peak, Summary: summary);
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        return (results.Sum(r => r.Indexed) / seconds, results.Max(r => r.Peak), string.Join(" | ", results.Select(r => r.Summary)));
    }

    private static double PeakMiB(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Small requests (GET /health/live, 8 clients) with keep-alive connections unbounded, bounded at the default
    /// (1000 requests) and at 100: what reconnecting costs where it costs most.
    /// </summary>
    private static async Task ConnectionLifetimeAsync(BenchOptions options, string modelDirectory, IReadOnlyDictionary<string, string> settings, Report report)
    {
        double? unbounded = null;
        foreach (var requests in new[] { "0", "1000", "100" })
        {
            await using var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory,
                new Dictionary<string, string>(settings) { ["MAX_CONNECTION_REQUESTS"] = requests, ["MAX_CONNECTION_AGE_S"] = "0" });
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 8 }) { BaseAddress = service.Address };
            var rate = await SmallRequestsAsync(http, 1.5);
            rate = await SmallRequestsAsync(http, options.Seconds);
            unbounded ??= rate;
            report.Add($"GET /health/live, 8 clients, MAX_CONNECTION_REQUESTS={requests}", Report.F(rate), "", "", "",
                requests == "0" ? "keep-alive unbounded" : $"{Report.F(rate / unbounded.Value, 3)}x unbounded");
        }
    }

    private static async Task<double> SmallRequestsAsync(HttpClient http, double seconds)
    {
        var clock = Stopwatch.StartNew();
        var done = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                using var response = await http.GetAsync(new Uri("/health/live", UriKind.Relative));
                response.EnsureSuccessStatusCode();
                Interlocked.Increment(ref done);
            }
        })));
        return done / clock.Elapsed.TotalSeconds;
    }

    /// <summary>The photos over http on 127.0.0.1 (HttpListener): the manifest's image server.</summary>
    private sealed class FileServer : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly string _folder;

        public FileServer(string folder)
        {
            _folder = folder;
            var port = FreePort();
            Address = $"http://127.0.0.1:{port}/";
            _listener.Prefixes.Add(Address);
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        public string Address { get; }

        public void Dispose() => _listener.Close();

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    var path = Path.Combine(_folder, Path.GetFileName(context.Request.Url!.AbsolutePath));
                    if (File.Exists(path))
                    {
                        var bytes = await File.ReadAllBytesAsync(path);
                        context.Response.ContentType = "image/jpeg";
                        context.Response.ContentLength64 = bytes.Length;
                        await context.Response.OutputStream.WriteAsync(bytes);
                    }
                    else
                    {
                        context.Response.StatusCode = 404;
                    }

                    context.Response.Close();
                });
            }
        }

        private static int FreePort()
        {
            using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace EmbeddingService.Bench;

/// <summary>The Release build of the service in its own process, so load generation never shares its runtime.</summary>
internal sealed class ServiceUnderTest : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    private ServiceUnderTest(Process process, Uri address)
    {
        _process = process;
        Address = address;
    }

    public Uri Address { get; }

    public int ProcessId => _process.Id;

    private int _failures;

    /// <summary>The service's log lines at error or critical level (<c>fail:</c>, <c>crit:</c>) so far.</summary>
    public int FailureLines => Volatile.Read(ref _failures);

    /// <summary>The service's log lines from its shutdown (what it says while it drains).</summary>
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    /// <summary>The exit code, or null if the process has not exited within <paramref name="timeout"/>.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Resident set size now and at its peak, in MiB, from /proc.</summary>
    public (double Current, double Peak) ResidentMiB()
    {
        var status = File.ReadAllLines($"/proc/{_process.Id}/status");
        double Field(string name) => double.Parse(status.First(l => l.StartsWith(name, StringComparison.Ordinal)).Split(':')[1].Trim().Split(' ')[0],
            System.Globalization.CultureInfo.InvariantCulture) / 1024;
        return (Field("VmRSS"), Field("VmHWM"));
    }

    public static async Task<ServiceUnderTest> StartAsync(string repositoryRoot, string modelDirectory, IReadOnlyDictionary<string, string> settings)
    {
        var dll = Path.Combine(repositoryRoot, "src", "EmbeddingService", "bin", "Release", "net10.0", "EmbeddingService.dll");
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet", [dll]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["HOST"] = "127.0.0.1";
        start.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["MODEL_DIR"] = modelDirectory;
        start.Environment["MODEL_AUTO_DOWNLOAD"] = "false";
        start.Environment["LOG_LEVEL"] = "warning";
        foreach (var (key, value) in settings) start.Environment[key] = value;
        var process = Process.Start(start)!;
        var service = new ServiceUnderTest(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            if (e.Data.Contains(" fail: ", StringComparison.Ordinal) || e.Data.Contains(" crit: ", StringComparison.Ordinal)) Interlocked.Increment(ref service._failures);
            if (!e.Data.Contains("GracefulShutdown", StringComparison.Ordinal)) return;
            lock (service._output) service._output.AppendLine(e.Data);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("  service: " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new HttpClient { BaseAddress = service.Address };
        for (var i = 0; i < 1200; i++)
        {
            try
            {
                if ((await client.GetAsync(new Uri("/health", UriKind.Relative))).StatusCode == HttpStatusCode.OK) return service;
            }
            catch (HttpRequestException)
            {
            }

            if (process.HasExited) throw new InvalidOperationException($"The service exited with {process.ExitCode}.");
            await Task.Delay(100);
        }

        await service.DisposeAsync();
        throw new TimeoutException("The service did not become healthy.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

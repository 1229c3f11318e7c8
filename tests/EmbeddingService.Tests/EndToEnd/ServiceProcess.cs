using System.Diagnostics;
using System.Text;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.EndToEnd;

/// <summary>The built service started as its own process, as a user starts it, on 127.0.0.1.</summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private ServiceProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Port { get; }

    public int ProcessId => _process.Id;

    /// <summary>A port nothing listens on now, for a service of its own.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Log lines at error level or above (ASP.NET's simple console writes them as "fail:" or "crit:").</summary>
    public IReadOnlyList<string> Failures => [.. Log.Split('\n').Where(l => l.Contains(" fail: ", StringComparison.Ordinal) || l.Contains(" crit: ", StringComparison.Ordinal))];

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static async Task<ServiceProcess> StartAsync(int port, IReadOnlyDictionary<string, string> environment, string? assembly = null)
    {
        var start = new ProcessStartInfo("dotnet", [assembly ?? Processes.ServiceAssembly()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["HOST"] = "127.0.0.1";
        start.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (key, value) in environment) start.Environment[key] = value;
        var service = new ServiceProcess(Process.Start(start)!, port);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (var i = 0; i < 600; i++)
        {
            if (service._process.HasExited)
            {
                throw new InvalidOperationException($"The service exited with {service._process.ExitCode}:\n{service.Log}");
            }

            try
            {
                using var health = await client.GetAsync(new Uri("/health", UriKind.Relative));
                if (health.IsSuccessStatusCode)
                {
                    return service;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        await service.DisposeAsync();
        throw new TimeoutException($"The service did not become healthy on port {port}:\n{service.Log}");
    }

    /// <summary>Sends SIGTERM, as Kubernetes and Docker stop a container.</summary>
    public async Task TerminateAsync() =>
        await Processes.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

    /// <summary>The exit code once the process has exited, or null if it has not within <paramref name="timeout"/>.</summary>
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

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}

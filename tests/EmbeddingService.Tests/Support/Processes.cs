using System.Diagnostics;

namespace EmbeddingService.Tests.Support;

/// <summary>Runs programs as a user would, for the end-to-end tests.</summary>
public static class Processes
{
    /// <summary>The service's own build output, from the same configuration as these tests.</summary>
    public static string ServiceAssembly()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var path = Path.Combine(SharedData.RepositoryRoot, "src", "EmbeddingService", "bin", configuration, "net10.0", "EmbeddingService.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("Build the solution first: " + path);
    }

    /// <summary>Runs to completion (at most two minutes) and returns the exit code with what it printed.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(
        string program, IEnumerable<string> arguments, string? workingDirectory = null, params (string Key, string Value)[] environment)
    {
        var start = new ProcessStartInfo(program, arguments)
        {
            WorkingDirectory = workingDirectory ?? string.Empty,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }
}

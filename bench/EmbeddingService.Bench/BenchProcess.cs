using System.Diagnostics;

namespace EmbeddingService.Bench;

/// <summary>A command the benchmarks run (the service's own commands, scripts): its output, or an exception with everything it said.</summary>
internal static class BenchProcess
{
    public static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, (string Key, string Value)[] environment)
    {
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)}: exit {process.ExitCode}\n{await output}\n{await error}");
        return (process.ExitCode, await output);
    }
}

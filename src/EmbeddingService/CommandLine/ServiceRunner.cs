using Microsoft.Extensions.Options;

namespace EmbeddingService.CommandLine;

public static class ServiceRunner
{
    /// <summary>Exit code when a setting is missing its form or its range: the same as a command's usage error.</summary>
    public const int BadConfiguration = CommandLine.ExitCodes.Usage;

    /// <summary>
    /// Checks every setting (binding and validation, what <c>ValidateOnStart</c> would find) before the server
    /// starts, so a mistyped value ends the process with one sentence and exit code 2 instead of an unhandled
    /// exception (SIGABRT, a stack trace); then runs the server.
    /// </summary>
    /// <returns>The process's exit code: non-zero when start-up refused to run (a database holding another model's vectors).</returns>
    public static int RunService(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        try
        {
            app.Services.GetService<IStartupValidator>()?.Validate();
        }
        catch (Exception e) when (IsConfigurationError(e))
        {
            return ExplainConfigurationError(e);
        }

        app.Run();
        return Environment.ExitCode;
    }

    /// <summary>A setting that does not bind (not a number, not one of an enum's names) or does not validate.</summary>
    public static bool IsConfigurationError(Exception e) => e is OptionsValidationException
        || (e is InvalidOperationException && e.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal));

    /// <summary>Says which setting is wrong in one sentence; returns the exit code for it.</summary>
    public static int ExplainConfigurationError(Exception e)
    {
        Console.Error.WriteLine($"The configuration is not valid: {Explain(e)}");
        return BadConfiguration;
    }

    private static string Explain(Exception e) => e switch
    {
        OptionsValidationException validation => string.Join("; ", validation.Failures),
        // "Failed to convert configuration value 'abc' at 'MAX_QUEUE_DEPTH' to type 'System.Int32'."
        _ when e.InnerException is { } inner => $"{e.Message} {inner.Message}",
        _ => e.Message,
    };
}

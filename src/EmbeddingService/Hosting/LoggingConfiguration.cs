using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EmbeddingService.Hosting;

public static class LoggingConfiguration
{
    /// <summary>Single-line console logs at the level <c>LOG_LEVEL</c> names, in uvicorn's words (debug, info, warning, ...).</summary>
    public static IHostApplicationBuilder AddServiceLogging(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var level = ParseLevel(builder.Configuration["LOG_LEVEL"]);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        builder.Logging.SetMinimumLevel(level);
        // Per-request framework logs only when asked for, as uvicorn's access log is at info.
        builder.Logging.AddFilter("Microsoft.AspNetCore", level <= LogLevel.Debug ? level : LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http", level <= LogLevel.Debug ? level : LogLevel.Warning);
        return builder;
    }

    public static LogLevel ParseLevel(string? name) => name?.Trim().ToUpperInvariant() switch
    {
        null or "" => LogLevel.Information,
        "TRACE" => LogLevel.Trace,
        "DEBUG" => LogLevel.Debug,
        "INFO" or "INFORMATION" => LogLevel.Information,
        "WARN" or "WARNING" => LogLevel.Warning,
        "ERROR" => LogLevel.Error,
        "CRITICAL" or "FATAL" => LogLevel.Critical,
        _ => throw new InvalidOperationException($"LOG_LEVEL '{name}' is not one of trace, debug, info, warning, error, critical."),
    };
}

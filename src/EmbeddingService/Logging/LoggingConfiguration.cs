using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EmbeddingService.Logging;

public static class LoggingConfiguration
{
    /// <summary>
    /// Console logs at the level <c>LOG_LEVEL</c> names, in uvicorn's words (debug, info, warning, ...): single lines of
    /// text, or with <c>LOG_FORMAT=json</c> one JSON object per line whose scopes carry the request's trace and span ids.
    /// </summary>
    public static IHostApplicationBuilder AddServiceLogging(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var level = ParseLevel(builder.Configuration["LOG_LEVEL"]);
        builder.Logging.ClearProviders();
        if (ParseJson(builder.Configuration["LOG_FORMAT"]))
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
            builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        }
        else
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            });
        }

        builder.Logging.SetMinimumLevel(level);
        // Per-request framework logs only when asked for, as uvicorn's access log is at info.
        builder.Logging.AddFilter("Microsoft.AspNetCore", level <= LogLevel.Debug ? level : LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http", level <= LogLevel.Debug ? level : LogLevel.Warning);
        // A failing readiness check is the probe's answer, not an error of the service: it says why in its body.
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", level <= LogLevel.Debug ? level : LogLevel.Critical);
        return builder;
    }

    private static bool ParseJson(string? format) => format?.Trim().ToUpperInvariant() switch
    {
        null or "" or "TEXT" or "PLAIN" => false,
        "JSON" => true,
        _ => throw new InvalidOperationException($"LOG_FORMAT '{format}' is not one of text, json."),
    };

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

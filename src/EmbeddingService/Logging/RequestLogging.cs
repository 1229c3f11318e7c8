using System.Diagnostics;
using EmbeddingService.Access;
using Microsoft.Extensions.Logging;
using EmbeddingService.Probes;

namespace EmbeddingService.Logging;

/// <summary>
/// One line per request, as uvicorn's access log: method, path (never the query string), status, time, client, and
/// the key's non-secret id. Never bodies, never keys. Probes log at debug, so an orchestrator's polling is not noise.
/// </summary>
public static partial class RequestLogging
{
    public static WebApplication UseRequestLogging(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("EmbeddingService.Requests");
        app.Use(async (context, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await next(context);
            }
            finally
            {
                var level = OperatorPaths.Contains(context.Request.Path) ? LogLevel.Debug : LogLevel.Information;
                if (logger.IsEnabled(level))
                {
                    var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    var key = context.User.FindFirst(ApiKeyAuthenticationHandler.KeyIdClaim)?.Value ?? "-";
                    var path = context.Request.Path.Value ?? "/";
                    var client = context.Connection.RemoteIpAddress?.ToString() ?? "-";
                    LogRequest(logger, level, context.Request.Method, path, context.Response.StatusCode, elapsed, client, key);
                }
            }
        });
        return app;
    }

    [LoggerMessage(Message = "{Method} {Path} {Status} {ElapsedMs:F1} ms client {Client} key {KeyId}")]
    private static partial void LogRequest(ILogger logger, LogLevel level, string method, string path, int status, double elapsedMs, string client, string keyId);
}

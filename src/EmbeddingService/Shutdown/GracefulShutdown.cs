using System.Diagnostics;
using EmbeddingService.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using EmbeddingService.Probes;

namespace EmbeddingService.Shutdown;

/// <summary>
/// Drains before the server stops: <see cref="IHostedLifecycleService.StoppingAsync"/> runs before Kestrel's own
/// stop, so requests already admitted finish on open connections and get their answers.
/// </summary>
public sealed partial class GracefulShutdown(Draining draining, IOptions<ShutdownOptions> options, ILogger<GracefulShutdown> logger) : IHostedLifecycleService
{
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var inFlight = draining.InFlight;
        LogDraining(logger, inFlight);
        // A second is kept for stopping the server and the rest of the host.
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(TimeSpan.FromSeconds(Math.Max(1, options.Value.ShutdownTimeoutSeconds - 1)));
        try
        {
            await draining.DrainAsync(budget.Token);
            var elapsed = Stopwatch.GetElapsedTime(started);
            LogDrained(logger, inFlight, elapsed.TotalMilliseconds);
        }
        catch (OperationCanceledException)
        {
            LogGaveUp(logger, draining.InFlight, options.Value.ShutdownTimeoutSeconds);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping: not ready any more, refusing new requests, waiting for {InFlight} in flight")]
    private static partial void LogDraining(ILogger logger, int inFlight);

    [LoggerMessage(Level = LogLevel.Information, Message = "Drained: the {InFlight} requests in flight at the signal were answered in {Milliseconds:F0} ms")]
    private static partial void LogDrained(ILogger logger, int inFlight, double milliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{InFlight} requests still in flight after SHUTDOWN_TIMEOUT_S={Seconds}: stopping anyway")]
    private static partial void LogGaveUp(ILogger logger, int inFlight, int seconds);
}

public static class GracefulShutdownExtensions
{
    /// <summary>SHUTDOWN_TIMEOUT_S and the drain on SIGTERM.</summary>
    public static IServiceCollection AddGracefulShutdown(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ShutdownOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Draining>();
        services.AddHostedService<GracefulShutdown>();
        services.AddOptions<HostOptions>().Configure<IOptions<ShutdownOptions>>((host, shutdown) =>
            host.ShutdownTimeout = TimeSpan.FromSeconds(shutdown.Value.ShutdownTimeoutSeconds));
        return services;
    }

    /// <summary>Of a body that arrives while draining, what is read and thrown away before the 503, and for how long.</summary>
    private const long DiscardLimitBytes = 64L * 1024 * 1024;

    private static readonly TimeSpan DiscardLimit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Counts requests in flight; once draining, refuses new ones with 503 and Retry-After. A client still sending its
    /// body when refused would see its connection reset once the server closes, instead of the answer: the body is read
    /// and thrown away first (bounded in bytes and time). No <c>Connection: close</c>: past the bound, Kestrel's own
    /// drain reads the rest, where closing would reset the client (measured earlier: docs/decisions.md).
    /// </summary>
    public static WebApplication UseDraining(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var draining = app.Services.GetRequiredService<Draining>();
        var problems = app.Services.GetRequiredService<IProblemDetailsService>();
        app.Use(async (context, next) =>
        {
            // The probes and metrics are answered while draining: readiness says why it fails.
            if (OperatorPaths.Contains(context.Request.Path))
            {
                await next(context);
                return;
            }

            if (!draining.TryEnter())
            {
                await DiscardBodyAsync(context);
                Refusals.Note(context, "shutting_down");
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = "1";
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = context,
                    ProblemDetails = { Status = StatusCodes.Status503ServiceUnavailable, Detail = "The service is shutting down; retry on another instance." },
                });
                return;
            }

            try
            {
                await next(context);
            }
            finally
            {
                draining.Leave();
            }
        });
        return app;
    }

    private static async Task DiscardBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength == 0 || (context.Request.ContentLength is null && context.Request.Headers.TransferEncoding.Count == 0))
        {
            return;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(DiscardLimit);
        var body = new Uploads.RequestBodyStream(context.Request.BodyReader);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long read = 0;
            int count;
            while (read < DiscardLimitBytes && (count = await body.ReadAsync(buffer, deadline.Token)) > 0)
            {
                read += count;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException)
        {
            // Too slow, too large or broken: answered all the same; Kestrel drains what is left.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

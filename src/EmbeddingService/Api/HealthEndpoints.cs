using EmbeddingService.ModelLifecycle;
using EmbeddingService.Probes;
using EmbeddingService.Storage;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace EmbeddingService.Api;

public static class HealthEndpoints
{
    /// <summary>
    /// <c>GET /health</c>: 200 once the model is loaded, 503 while it loads or if it failed. With storage on it adds
    /// <c>"database": "ok" | "read_only" | "unavailable"</c> (and <c>"database_replica"</c> with a standby), which never turns the
    /// embedding service unhealthy.
    /// </summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        // Probes never need a key and are never rate-limited: an orchestrator has neither.
        app.MapGet("/health", HealthAsync).WithName("Health").WithTags(ApiDocs.Operations).WithSummary("Service health").Produces<HealthResponse>(StatusCodes.Status503ServiceUnavailable).AllowAnonymous().DisableRateLimiting();
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteProbeAsync })
            .AllowAnonymous().DisableRateLimiting().WithTags(ApiDocs.Operations).WithSummary("Liveness: the process answers");
        app.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadinessChecks.Tag),
            ResponseWriter = WriteProbeAsync,
        }).AllowAnonymous().DisableRateLimiting().WithTags(ApiDocs.Operations).WithSummary("Readiness: model loaded, database reachable when configured, not stopping");
        return app;
    }

    /// <summary>
    /// <c>{"status": "ready" | "not_ready", "checks": {...}}</c>, and a <c>detail</c> naming what is not ready; the
    /// liveness probe runs no check and says <c>"alive"</c>.
    /// </summary>
    private static async Task WriteProbeAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        var ready = report.Status == HealthStatus.Healthy;
        json.WriteString("status", report.Entries.Count == 0 ? "alive" : ready ? "ready" : "not_ready");
        if (!ready)
        {
            json.WriteString("detail", string.Join(" ", report.Entries.Values.Where(e => e.Status != HealthStatus.Healthy).Select(e => e.Description)));
        }

        if (report.Entries.Count > 0)
        {
            json.WriteStartObject("checks");
            foreach (var (name, entry) in report.Entries)
            {
                json.WriteStartObject(name);
                json.WriteString("status", entry.Status == HealthStatus.Healthy ? "ok" : "failing");
                if (entry.Description is { } description) json.WriteString("detail", description);
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    private static async Task<JsonHttpResult<HealthResponse>> HealthAsync(ModelState state, StorageState storage, CancellationToken cancellationToken)
    {
        var reachable = await storage.IsReachableAsync(cancellationToken);
        var (database, replica) = (Database(reachable), reachable?.Replica is { } up ? (up ? "ok" : "unavailable") : null);
        return state.Status switch
        {
            ModelStatus.Ready => TypedResults.Json(new HealthResponse("healthy", true, state.Model!.Device, Database: database, DatabaseReplica: replica)),
            ModelStatus.Loading => TypedResults.Json(new HealthResponse("loading", false, "cpu", Database: database, DatabaseReplica: replica), statusCode: StatusCodes.Status503ServiceUnavailable),
            _ => TypedResults.Json(new HealthResponse("unhealthy", false, "cpu", state.Error, database, replica), statusCode: StatusCodes.Status503ServiceUnavailable),
        };
    }

    /// <summary>"ok"; "read_only" when only the standby answers (searches and reads go on, writes answer 503); "unavailable".</summary>
    private static string? Database(Reachability? reachable) => reachable switch
    {
        null => null,
        { Primary: true } => "ok",
        { Replica: true } => "read_only",
        _ => "unavailable",
    };
}

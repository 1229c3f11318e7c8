using EmbeddingService.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Shutdown;

namespace EmbeddingService.Probes;

/// <summary>Ready = the model serves, the database answers (when storage is on), and no stop has begun.</summary>
public static class ReadinessChecks
{
    public const string Tag = "ready";

    public static IServiceCollection AddReadinessChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<ModelReadyCheck>("model", tags: [Tag])
            .AddCheck<DatabaseReachableCheck>("database", tags: [Tag])
            .AddCheck<NotStoppingCheck>("shutdown", tags: [Tag]);
        return services;
    }
}

public sealed class ModelReadyCheck(ModelState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) => Task.FromResult(state.Status switch
    {
        ModelStatus.Ready => HealthCheckResult.Healthy($"{state.Model!.Files.Variant.ToString().ToLowerInvariant()} on {state.Model.Device}"),
        ModelStatus.Loading => HealthCheckResult.Unhealthy("The model is loading."),
        _ => HealthCheckResult.Unhealthy($"The model failed to load: {state.Error}"),
    });
}

public sealed class DatabaseReachableCheck(StorageState storage) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        await storage.IsReachableAsync(cancellationToken) switch
        {
            null => HealthCheckResult.Healthy("Storage is off (no DATABASE_URL)."),
            { Primary: true, Replica: false } => HealthCheckResult.Degraded("The primary answers; the standby (DATABASE_READ_URL) does not: reads go to the primary."),
            { Primary: true } => HealthCheckResult.Healthy("The database answers."),
            // Still ready: searches and reads go on from the standby; writes answer 503 until the primary is back.
            { Replica: true } => HealthCheckResult.Degraded("Reads only: the standby answers, the primary (DATABASE_URL) does not; writes answer 503."),
            _ => HealthCheckResult.Unhealthy($"The database does not answer within 2 s{(storage.Error is { } error ? $": {error}" : ".")}"),
        };
}

public sealed class NotStoppingCheck(Draining draining) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(draining.IsDraining ? HealthCheckResult.Unhealthy("The service is shutting down.") : HealthCheckResult.Healthy());
}

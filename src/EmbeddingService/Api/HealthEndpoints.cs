using EmbeddingService.Hosting;
using EmbeddingService.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

public static class HealthEndpoints
{
    /// <summary>
    /// <c>GET /health</c>: 200 once the model is loaded, 503 while it loads or if it failed. With storage on it adds
    /// <c>"database": "ok" | "unavailable"</c>, which never turns the embedding service unhealthy.
    /// </summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", HealthAsync).WithName("Health").WithSummary("Service health");
        return app;
    }

    private static async Task<JsonHttpResult<HealthResponse>> HealthAsync(ModelState state, StorageState storage, CancellationToken cancellationToken)
    {
        var database = await DatabaseAsync(storage, cancellationToken);
        return state.Status switch
        {
            ModelStatus.Ready => TypedResults.Json(new HealthResponse("healthy", true, state.Model!.Device, Database: database)),
            ModelStatus.Loading => TypedResults.Json(new HealthResponse("loading", false, "cpu", Database: database), statusCode: StatusCodes.Status503ServiceUnavailable),
            _ => TypedResults.Json(new HealthResponse("unhealthy", false, "cpu", state.Error, database), statusCode: StatusCodes.Status503ServiceUnavailable),
        };
    }

    private static async Task<string?> DatabaseAsync(StorageState storage, CancellationToken cancellationToken)
    {
        if (storage.Status == StorageStatus.NotConfigured)
        {
            return null;
        }

        if (storage.Store is not { } store)
        {
            return "unavailable";
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            return await store.PingAsync(timeout.Token) ? "ok" : "unavailable";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return "unavailable";
        }
    }
}

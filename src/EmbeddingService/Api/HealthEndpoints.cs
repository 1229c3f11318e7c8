using EmbeddingService.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

public static class HealthEndpoints
{
    /// <summary><c>GET /health</c>: 200 once the model is loaded, 503 while it loads or if it failed.</summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", Health).WithName("Health").WithSummary("Service health");
        return app;
    }

    private static JsonHttpResult<HealthResponse> Health(ModelState state) => state.Status switch
    {
        ModelStatus.Ready => TypedResults.Json(new HealthResponse("healthy", true, state.Model!.Device)),
        ModelStatus.Loading => TypedResults.Json(new HealthResponse("loading", false, "cpu"), statusCode: StatusCodes.Status503ServiceUnavailable),
        _ => TypedResults.Json(new HealthResponse("unhealthy", false, "cpu", state.Error), statusCode: StatusCodes.Status503ServiceUnavailable),
    };
}

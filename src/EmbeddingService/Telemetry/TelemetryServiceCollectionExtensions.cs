using EmbeddingService.Access;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;

namespace EmbeddingService.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>Metrics through OpenTelemetry: ASP.NET Core's HTTP server, Kestrel, rate limiting, Npgsql, the runtime, and the service's own.</summary>
    public static IServiceCollection AddTelemetry(this IServiceCollection services)
    {
        services.TryAddSingleton<ServiceMetrics>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(ServiceMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.RateLimiting",
                "Microsoft.AspNetCore.Authentication", "Npgsql", "System.Runtime")
            .AddPrometheusExporter());
        return services;
    }

    /// <summary><c>GET /metrics</c>, behind the API keys unless METRICS_PUBLIC=true, never rate-limited.</summary>
    public static WebApplication MapMetrics(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var endpoint = app.MapPrometheusScrapingEndpoint("/metrics").DisableRateLimiting();
        if (app.Services.GetRequiredService<IOptions<AccessOptions>>().Value.MetricsPublic)
        {
            endpoint.AllowAnonymous();
        }

        return app;
    }
}

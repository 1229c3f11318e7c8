namespace EmbeddingService.Probes;

/// <summary>The paths an orchestrator and a scraper call on their own schedule: /health, /health/live, /health/ready, /metrics.</summary>
public static class OperatorPaths
{
    public static bool Contains(PathString path) =>
        path.StartsWithSegments("/health", StringComparison.OrdinalIgnoreCase) || path.StartsWithSegments("/metrics", StringComparison.OrdinalIgnoreCase);
}

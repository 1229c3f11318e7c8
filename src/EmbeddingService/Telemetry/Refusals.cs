namespace EmbeddingService.Telemetry;

/// <summary>
/// Where a refusal is decided, its reason is noted on the request; one middleware counts them when the response is
/// done, so every refusal is counted once whichever route or middleware made it.
/// </summary>
public static class Refusals
{
    private const string Key = "embedding.refusal";

    public static void Note(HttpContext context, string reason)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Items[Key] = reason;
    }

    public static WebApplication UseRefusalCounting(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var metrics = app.Services.GetRequiredService<ServiceMetrics>();
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            finally
            {
                if (context.Items.TryGetValue(Key, out var reason) && reason is string name)
                {
                    metrics.Refused(name);
                }
            }
        });
        return app;
    }
}

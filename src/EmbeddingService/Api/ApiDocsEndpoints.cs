namespace EmbeddingService.Api;

public static class ApiDocsEndpoints
{
    /// <summary><c>/openapi.json</c> and Swagger UI at <c>/docs</c>, where FastAPI users look for them.</summary>
    public static WebApplication MapApiDocs(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapOpenApi("/openapi.json");
        app.UseSwaggerUI(o =>
        {
            o.RoutePrefix = "docs";
            o.SwaggerEndpoint("/openapi.json", "Visual search embedding service");
            o.DocumentTitle = "Visual search embedding service - docs";
        });
        return app;
    }
}

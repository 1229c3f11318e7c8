using Microsoft.Extensions.FileProviders;

namespace EmbeddingService.Ui;

public static class UiEndpoints
{
    public const string Path = "/ui";

    /// <summary>The visual search page at <c>/ui/</c>: static files copied beside the service's binary, no CDN, no build step.</summary>
    public static WebApplication MapUi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var files = new PhysicalFileProvider(System.IO.Path.Combine(AppContext.BaseDirectory, "Ui", "static"));
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files, RequestPath = Path });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            RequestPath = Path,
            // The page is small and changes with the service: revalidate rather than cache blindly. /ui redirects to /ui/
        // by the default-files middleware.
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
        });
        return app;
    }
}

using EmbeddingService.Download;
using EmbeddingService.Model;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Logging;

namespace EmbeddingService.Download;

/// <summary><c>download-model [--dir DIR]</c>: fetches the configured model and exits (parsed by <see cref="CommandLine.ServiceCommands"/>).</summary>
public static class DownloadModelCommand
{
    public const string Name = "download-model";

    public static async Task<int> RunAsync(string directory)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["MODEL_DIR"] = directory;

        builder.AddServiceLogging();
        builder.Services.AddModel(builder.Configuration, startInBackground: false);
        using var host = builder.Build();
        try
        {
            await host.Services.GetRequiredService<ModelProvisioner>().EnsureAsync(forceDownload: true, CancellationToken.None);
            var files = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ModelOptions>>().Value.Files;
            Console.WriteLine($"Model ready in {files.Root}");
            return CommandLine.ExitCodes.Success;
        }
        catch (Exception e) when (e is ModelDownloadException or ModelDirectoryException)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return CommandLine.ExitCodes.Failed;
        }
    }
}

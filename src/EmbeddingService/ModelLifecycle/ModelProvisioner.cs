using EmbeddingService.Download;
using EmbeddingService.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EmbeddingService.ModelLifecycle;

/// <summary>Makes sure the configured model directory is complete, downloading what is missing when allowed.</summary>
public sealed partial class ModelProvisioner(IOptions<ModelOptions> options, HubFileDownloader downloader, ILogger<ModelProvisioner> logger)
{
    public async Task EnsureAsync(bool forceDownload, CancellationToken cancellationToken)
    {
        var files = options.Value.Files;
        var missing = files.Missing();
        if (missing.Count == 0)
        {
            return;
        }

        if (!options.Value.AutoDownload && !forceDownload)
        {
            throw new ModelDirectoryException(
                $"{files.Root}: missing {string.Join(", ", missing)}, and MODEL_AUTO_DOWNLOAD is false. Set MODEL_DIR to a model directory, " +
                "run 'dotnet run --project src/EmbeddingService -- download-model', or generate a synthetic model with tools/SyntheticModel.");
        }

        LogDownloading(logger, options.Value.Repository, options.Value.Revision, files.Root, missing.Count);
        await downloader.DownloadAsync(files, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloading {Repository}@{Revision} into {Directory} ({Count} files missing)")]
    private static partial void LogDownloading(ILogger logger, string repository, string revision, string directory, int count);
}

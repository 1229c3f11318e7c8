using EmbeddingService.Download;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Hosting;

/// <summary>Downloads (if needed) and loads the model in the background so the server listens at once.</summary>
public sealed partial class ModelStartupService(
    ModelProvisioner provisioner,
    ModelLoader loader,
    ModelState state,
    IOptions<ModelOptions> options,
    IOptions<BatchingOptions> batching,
    ILoggerFactory loggers,
    ServiceMetrics metrics,
    ILogger<ModelStartupService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            await provisioner.EnsureAsync(forceDownload: false, stoppingToken);
            var model = await Task.Run(() => loader.Load(options.Value.Files), stoppingToken);
            if (model.Config.SyntheticNote is { } note)
            {
                LogSynthetic(logger, model.Files.Root, note);
            }

            state.SetReady(new ServingModel(model, batching.Value, loggers, metrics));
            var cpu = Cpu.CpuFeatures.Current.Describe();
            LogReady(logger, model.Files.Root, model.Files.Variant, model.Device, cpu);
        }
        catch (Exception e) when (e is ModelDirectoryException or ModelDownloadException)
        {
            state.SetFailed(e.Message);
            LogFailed(logger, e.Message);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // Whatever start-up throws becomes /health's reason, not a stopped server.
        catch (Exception e)
#pragma warning restore CA1031
        {
            state.SetFailed($"unexpected error while loading the model: {e.Message}");
            LogUnexpected(logger, e);
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "Unexpected error while loading the model")]
    private static partial void LogUnexpected(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The model in {Directory} is SYNTHETIC: {Note}. Its embeddings are not CLIP's.")]
    private static partial void LogSynthetic(ILogger logger, string directory, string note);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model loaded from {Directory} ({Variant}) on {Device}; CPU: {Cpu}")]
    private static partial void LogReady(ILogger logger, string directory, ModelVariant variant, string device, string cpu);

    [LoggerMessage(Level = LogLevel.Error, Message = "The model could not be loaded: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}

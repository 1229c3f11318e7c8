using EmbeddingService.Download;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EmbeddingService.ModelLifecycle;

/// <summary>
/// The one way the model comes up, for the server and for the commands alike: downloaded if needed, loaded, checked,
/// announced (a synthetic model's warning, the CPU it runs on), and set ready with its metrics.
/// </summary>
public sealed partial class ModelStartup(
    ModelProvisioner provisioner,
    ModelLoader loader,
    ModelState state,
    IOptions<ModelOptions> options,
    IOptions<BatchingOptions> batching,
    ILoggerFactory loggers,
    ServiceMetrics metrics,
    ILogger<ModelStartup> logger)
{
    /// <exception cref="ModelDirectoryException">The model directory is missing files or they do not fit the contract.</exception>
    /// <exception cref="ModelDownloadException">The model could not be downloaded.</exception>
    public async Task<ClipModel> StartAsync(CancellationToken cancellationToken)
    {
        await provisioner.EnsureAsync(forceDownload: false, cancellationToken);
        // Known from the config files in a moment, while the sessions take seconds: the store is checked meanwhile.
        state.SetCard(ModelCard.Read(options.Value.Files));
        var model = await Task.Run(() => loader.Load(options.Value.Files), cancellationToken);
        if (model.Config.SyntheticNote is { } note)
        {
            LogSynthetic(logger, model.Files.Root, note);
        }

        state.SetReady(new ServingModel(model, batching.Value, loggers, metrics));
        var cpu = Cpu.CpuFeatures.Current.Describe();
        LogReady(logger, model.Card.Name, model.Card.Dimension, model.Card.ImageSize, model.Files.Root, model.Files.Variant, model.Device, cpu);
        return model;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The model in {Directory} is SYNTHETIC: {Note}. Its embeddings are not CLIP's.")]
    private static partial void LogSynthetic(ILogger logger, string directory, string note);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {Name} ({Dimension}-d, {ImageSize} px) loaded from {Directory} ({Variant}) on {Device}; CPU: {Cpu}")]
    private static partial void LogReady(ILogger logger, string name, int dimension, int imageSize, string directory, ModelVariant variant, string device, string cpu);
}

/// <summary>Starts the model in the background so the server listens at once; a failure becomes /health's reason.</summary>
public sealed partial class ModelStartupService(ModelStartup startup, ModelState state, ILogger<ModelStartupService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            await startup.StartAsync(stoppingToken);
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

    [LoggerMessage(Level = LogLevel.Error, Message = "The model could not be loaded: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}

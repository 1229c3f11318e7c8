using EmbeddingService.Model;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace EmbeddingService.Storage;

/// <summary>
/// Connects to DATABASE_URL, applies migrations, checks the store's identity, then opens the store. A database
/// that is down at start is retried (the embedding endpoints work meanwhile); one that holds another model's or
/// variant's vectors stops the service with a message saying why.
/// </summary>
public sealed partial class StorageStartupService(
    IOptions<StorageOptions> options, IOptions<ModelOptions> model, ModelLifecycle.ModelState modelState, StorageState state, IHostApplicationLifetime lifetime,
    ILogger<StorageStartupService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            state.Set(StorageStatus.NotConfigured);
            return;
        }

        state.Set(StorageStatus.Connecting);
        // The store holds one model's vectors: which one, from the model's config files, or while they download from
        // the name MODEL_REPO gives (checked against the config once read); else once the model says.
        ModelCard card;
        try
        {
            card = ModelCard.TryExpected(model.Value) ?? await modelState.CardAsync(stoppingToken);
        }
        catch (ModelDirectoryException e)
        {
            state.Set(StorageStatus.Refused, error: $"the store is opened for the model's vectors, and the model cannot be read: {e.Message}");
            return;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }

        var identity = new StoreIdentity(card.Name, model.Value.Variant.ToString().ToLowerInvariant(), card.Dimension);
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var store = await PostgresVectorStore.OpenAsync(options.Value, identity, stoppingToken);
                state.Set(StorageStatus.Ready, store);
                LogReady(logger, store.PgvectorVersion!, identity.Model, identity.Dimension, identity.Variant);
                if (store.OpenedReadOnly) LogReadOnly(logger);
                await CheckModelAsync(card, stoppingToken);
                return;
            }
            catch (StoreMismatchException e)
            {
                state.Set(StorageStatus.Refused, error: e.Message);
                LogRefused(logger, e.Message);
                Environment.ExitCode = CommandLine.ExitCodes.StoreMismatch;
                lifetime.StopApplication();
                return;
            }
            catch (StoreLayoutException e)
            {
                // The embedding endpoints go on; storage answers 503 with this sentence until the store is migrated.
                state.Set(StorageStatus.Refused, error: e.Message);
                LogLayout(logger, e.Message);
                return;
            }
            catch (Exception e) when (PostgresVectorStore.IsOutage(e))
            {
                LogWaiting(logger, e.Message, delay.TotalSeconds);
                await Task.Delay(delay, stoppingToken).ContinueWith(static _ => { }, TaskScheduler.Default);
                delay = TimeSpan.FromSeconds(Math.Min(30, delay.TotalSeconds * 2));
            }
            catch (PostgresException e)
            {
                // No pgvector, no rights to create it, ...: storage stays off, the embedding endpoints keep working.
                state.Set(StorageStatus.Refused, error: $"the database refused the schema: {e.MessageText}");
                LogSchemaRefused(logger, e.MessageText);
                return;
            }
        }
    }

    /// <summary>A store opened on the name MODEL_REPO gives is closed if the model, once read, is another.</summary>
    private async Task CheckModelAsync(ModelCard expected, CancellationToken stoppingToken)
    {
        ModelCard actual;
        try
        {
            actual = await modelState.CardAsync(stoppingToken);
        }
        catch (Exception e) when (e is ModelDirectoryException or OperationCanceledException)
        {
            return; // the model's own failure is /health's reason
        }

        if (actual.Name == expected.Name && actual.Dimension == expected.Dimension) return;
        var reason = $"the store was opened for {expected.Name} ({expected.Dimension}-d), the name MODEL_REPO gives, but the model is {actual.Name} " +
            $"({actual.Dimension}-d): restart to open it for this model.";
        // Not disposed: requests that took it a moment ago finish on it; the process ends soon (restart).
        state.Set(StorageStatus.Refused, error: reason);
        LogLayout(logger, reason);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage ready (pgvector {Version}, {Model}, {Dimension}-d, variant {Variant})")]
    private static partial void LogReady(ILogger logger, string version, string model, int dimension, string variant);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The primary (DATABASE_URL) does not answer: searches and reads come from the standby (DATABASE_READ_URL); writes answer 503 until the primary is back")]
    private static partial void LogReadOnly(ILogger logger);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Refusing the database in DATABASE_URL: {Reason}")]
    private static partial void LogRefused(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Storage is off: {Reason}")]
    private static partial void LogLayout(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database is not reachable ({Reason}); retrying in {Seconds} s")]
    private static partial void LogWaiting(ILogger logger, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Storage is off: the database refused the schema ({Reason}); is pgvector installed?")]
    private static partial void LogSchemaRefused(ILogger logger, string reason);
}

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
    IOptions<StorageOptions> options, IOptions<ModelOptions> model, StorageState state, IHostApplicationLifetime lifetime, ILogger<StorageStartupService> logger)
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
        var identity = new StoreIdentity(ClipModel.DisplayName, model.Value.Variant.ToString().ToLowerInvariant(), 512);
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var store = await PostgresVectorStore.OpenAsync(options.Value, identity, stoppingToken);
                state.Set(StorageStatus.Ready, store);
                LogReady(logger, store.PgvectorVersion!, identity.Variant);
                if (store.OpenedReadOnly) LogReadOnly(logger);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage ready (pgvector {Version}, variant {Variant})")]
    private static partial void LogReady(ILogger logger, string version, string variant);

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

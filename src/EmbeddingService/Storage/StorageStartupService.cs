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
        var connectionString = options.Value.ConnectionString();
        var identity = new StoreIdentity(ClipModel.DisplayName, model.Value.Variant.ToString().ToLowerInvariant(), 512);
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                string version;
                await using (var plain = NpgsqlDataSource.Create(connectionString))
                {
                    await StorageMigrations.ApplyAsync(plain, options.Value, identity, stoppingToken);
                    await using var command = plain.CreateCommand("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
                    version = (string)(await command.ExecuteScalarAsync(stoppingToken))!;
                }

                // Built after the migrations: a data source maps the vector type only if it existed when it first connected.
                var builder = new NpgsqlDataSourceBuilder(connectionString);
                builder.UseVector();
                var iterative = System.Version.TryParse(version, out var parsed) && parsed >= new System.Version(0, 8);
                state.Set(StorageStatus.Ready, new PostgresVectorStore(builder.Build(), iterative));
                LogReady(logger, version, identity.Variant);
                return;
            }
            catch (StoreMismatchException e)
            {
                state.Set(StorageStatus.Refused, error: e.Message);
                LogRefused(logger, e.Message);
                Environment.ExitCode = 3;
                lifetime.StopApplication();
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

    [LoggerMessage(Level = LogLevel.Critical, Message = "Refusing the database in DATABASE_URL: {Reason}")]
    private static partial void LogRefused(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database is not reachable ({Reason}); retrying in {Seconds} s")]
    private static partial void LogWaiting(ILogger logger, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Storage is off: the database refused the schema ({Reason}); is pgvector installed?")]
    private static partial void LogSchemaRefused(ILogger logger, string reason);
}

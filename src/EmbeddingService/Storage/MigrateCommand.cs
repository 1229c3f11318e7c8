using EmbeddingService.CommandLine;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Storage;

/// <summary><c>migrate</c>: moves a store of an earlier layout to today's, online (<see cref="OnlineMigration"/>).</summary>
public static class MigrateCommand
{
    public const string Name = "migrate";

    public static async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = new StorageOptions();
        new ConfigurationBuilder().AddEnvironmentVariables().Build().Bind(options);
        if (!options.Enabled)
        {
            await Console.Error.WriteLineAsync("DATABASE_URL is not set: migrate moves the store in that database to today's layout.");
            return ExitCodes.Usage;
        }

        try
        {
            var moved = await OnlineMigration.RunAsync(options, line => Console.Error.WriteLine(line), cancellationToken);
            Console.WriteLine(moved
                ? "The store is in today's layout; start (or roll out) this version now: instances of the previous one cannot use it any more."
                : "Nothing to migrate: the store is already in today's layout, or empty (the service sets a new store up at start).");
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("Interrupted: the store is as it was (the copy so far is kept beside it); run migrate again to go on.");
            return ExitCodes.Interrupted;
        }
        catch (StoreLayoutException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return ExitCodes.StoreMismatch;
        }
        catch (Exception e) when (PostgresVectorStore.IsOutage(e))
        {
            await Console.Error.WriteLineAsync($"The database cannot be reached or stopped answering ({e.Message}): the store is as it was; run migrate again to go on.");
            return ExitCodes.DatabaseUnreachable;
        }
    }
}

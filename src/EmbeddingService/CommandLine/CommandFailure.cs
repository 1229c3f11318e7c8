using EmbeddingService.Download;
using EmbeddingService.Model;
using EmbeddingService.Storage;

namespace EmbeddingService.CommandLine;

/// <summary>The faults every command on the store explains the same way: one sentence, and the exit code that says what kind.</summary>
internal static class CommandFailure
{
    public static bool IsKnown(Exception e) =>
        e is ModelDirectoryException or ModelDownloadException or StoreMismatchException or StoreLayoutException or StorageUnavailableException || PostgresVectorStore.IsOutage(e);

    /// <param name="kept">What survives a database that stopped answering, e.g. "what was written is kept".</param>
    public static async Task<int> ExplainAsync(Exception e, string kept)
    {
        ArgumentNullException.ThrowIfNull(e);
        switch (e)
        {
            case ModelDirectoryException or ModelDownloadException:
                await Console.Error.WriteLineAsync(e.Message);
                return ExitCodes.Failed;
            case StoreMismatchException or StoreLayoutException:
                await Console.Error.WriteLineAsync(e.Message);
                return ExitCodes.StoreMismatch;
            default:
                await Console.Error.WriteLineAsync($"The database cannot be reached or stopped answering ({e.Message}): {kept}; run the same command again to go on.");
                return ExitCodes.DatabaseUnreachable;
        }
    }
}

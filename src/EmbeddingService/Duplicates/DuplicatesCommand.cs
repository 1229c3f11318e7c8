using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using EmbeddingService.CommandLine;
using EmbeddingService.Storage;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Duplicates;

/// <summary>
/// <c>duplicates [--max-distance D] [--out groups.jsonl]</c>: the whole catalogue checked for duplicates from its stored
/// vectors: every item not scanned at this distance since it last changed gets its nearest neighbours through the
/// vector index (batched, on several connections), recorded as pairs; then the groups, the same as <c>GET
/// /duplicates</c> answers, are counted (and written with --out). Interrupted, it resumes: scanned items stay scanned.
/// </summary>
public static class DuplicatesCommand
{
    public const string Name = "duplicates";

    /// <summary>The groups' lines as the API writes them (snake_case).</summary>
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>Items per round trip: their neighbour queries go in one batch.</summary>
    private const int Batch = 128;

    public static async Task<int> RunAsync(double? maxDistance, string? output, int workers, CancellationToken cancellationToken)
    {
        var options = new StorageOptions();
        new ConfigurationBuilder().AddEnvironmentVariables().Build().Bind(options);
        if (!options.Enabled)
        {
            await Console.Error.WriteLineAsync("DATABASE_URL is not set: duplicates checks the store in that database.");
            return ExitCodes.Usage;
        }

        var radius = maxDistance ?? options.DuplicateMaxDistance;
        try
        {
            await using var store = await PostgresVectorStore.OpenExistingAsync(options, cancellationToken);
            var clock = Stopwatch.StartNew();
            long scanned = 0, withNeighbours = 0;
            var reported = TimeSpan.Zero;
            async Task WorkAsync(int shard)
            {
                var after = string.Empty;
                while (true)
                {
                    var batch = await store.ScanNextAsync(after, Batch, radius, shard, workers, cancellationToken);
                    if (batch.Count == 0) return;
                    after = batch[^1].Id;
                    Interlocked.Add(ref scanned, batch.Count);
                    Interlocked.Add(ref withNeighbours, batch.Count(b => b.Neighbours.Count > 0));
                    lock (clock)
                    {
                        if (clock.Elapsed - reported < TimeSpan.FromSeconds(5)) continue;
                        reported = clock.Elapsed;
                        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"scanned {Interlocked.Read(ref scanned):N0} items ({Interlocked.Read(ref scanned) / clock.Elapsed.TotalSeconds:N0}/s), {Interlocked.Read(ref withNeighbours):N0} with a neighbour within {radius}"));
                    }
                }
            }

            await Task.WhenAll(Enumerable.Range(0, workers).Select(shard => Task.Run(() => WorkAsync(shard), CancellationToken.None)));
            var scanTime = clock.Elapsed;
            var (groups, exact, items) = await WriteGroupsAsync(store, radius, output, cancellationToken);
            var done = Interlocked.Read(ref scanned);
            var scan = string.Create(CultureInfo.InvariantCulture,
                $"scanned {done:N0} items in {scanTime.TotalSeconds:F1} s ({done / Math.Max(0.001, scanTime.TotalSeconds):N0}/s; the others were scanned before); ");
            var found = string.Create(CultureInfo.InvariantCulture,
                $"{groups:N0} duplicate groups within a cosine distance of {radius} ({exact:N0} of exact copies, {groups - exact:N0} near), {items:N0} items in them");
            Console.WriteLine(scan + found + (output is null ? string.Empty : $"; written to {output}"));
            return ExitCodes.Success;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("Stopped by Ctrl-C: the items scanned so far are kept; run the same command again to go on.");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"The groups cannot be written to {output}: {e.Message}");
            return ExitCodes.Failed;
        }
        catch (Exception e) when (CommandFailure.IsKnown(e))
        {
            return await CommandFailure.ExplainAsync(e, "what was scanned is kept");
        }
    }

    /// <summary>Every group, page by page as the API gives them; as JSON lines to <paramref name="output"/> when given.</summary>
    private static async Task<(long Groups, long Exact, long Items)> WriteGroupsAsync(PostgresVectorStore store, double radius, string? output, CancellationToken cancellationToken)
    {
        await using var file = output is null ? null : new StreamWriter(output, append: false);
        long groups = 0, exact = 0, items = 0;
        string? after = null;
        do
        {
            var page = await store.DuplicatesAsync(radius, 1000, after, cancellationToken);
            foreach (var group in page.Groups)
            {
                groups++;
                if (group.Exact) exact++;
                items += group.Items.Count;
                if (file is not null) await file.WriteLineAsync(JsonSerializer.Serialize(group, Json));
            }

            after = page.Next;
        }
        while (after is not null);
        return (groups, exact, items);
    }
}

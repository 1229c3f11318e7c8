using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using EmbeddingService.CommandLine;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using Microsoft.Extensions.Configuration;
using Spectre.Console;

namespace EmbeddingService.Importing;

/// <summary>
/// <c>import FILE.jsonl</c> or <c>import --from-database URL --query SQL</c>: vectors computed elsewhere (the replaced
/// service's, most often) into the store, without the model. Bad rows are named and skipped, the rest kept; ids stored
/// already with the same vector and metadata are left alone, so a rerun resumes; a duplicate id in the input is refused
/// after its first row. Into an empty store the rows are COPYed before the indexes are built (<see cref="BulkLoad"/>).
/// </summary>
public static class ImportCommand
{
    public const string Name = "import";

    /// <summary>Rows per COPY: amortizes the round trips; ~5 MB of vectors in memory.</summary>
    private const int Batch = 5_000;

    /// <summary>COPY streams at once: two kept a 2-core machine busy (docs/decisions.md, import); more only add memory.</summary>
    private const int Writers = 2;

    public static async Task<int> RunAsync(ImportSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var options = new StorageOptions();
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        configuration.Bind(options);
        if (!options.Enabled)
        {
            await Console.Error.WriteLineAsync("DATABASE_URL is not set: import writes into the store in that database (scripts/postgres.sh start gives a local one).");
            return ExitCodes.Usage;
        }

        var summary = new ImportSummary();
        try
        {
            var model = new ModelOptions();
            configuration.Bind(model);
            var card = ModelCard.Expected(model);
            await using var store = await PostgresVectorStore.OpenAsync(options, new StoreIdentity(card.Name, settings.Variant, card.Dimension), cancellationToken);
            var load = await store.BeginBulkLoadAsync(options, cancellationToken);
            var rows = settings.File is { } file
                ? ImportSources.JsonLinesAsync(file, card.Dimension, cancellationToken)
                : ImportSources.DatabaseAsync(new StorageOptions { DatabaseUrl = settings.SourceDatabase }.ConnectionString(), settings.Query!, card.Dimension, cancellationToken);
            var clock = Stopwatch.StartNew();
            var cpu = Environment.CpuUsage.TotalTime;
            await WriteAsync(rows, load, card.Name, settings.Variant, summary, clock, cancellationToken);
            summary.Loaded = clock.Elapsed;
            summary.LoadCpu = Environment.CpuUsage.TotalTime - cpu;
            if (load.BuildsIndexes)
            {
                // The build takes minutes at millions of rows: say what is going on, with the rate that was the load's.
                Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"loaded {summary.Written:N0} vectors in {summary.Loaded.TotalSeconds:F1} s ({summary.Rate:N0}/s); building the indexes"));
            }

            if (await load.FinishAsync(cancellationToken) is { } build) summary.IndexBuild = build;
            summary.Print(load.Direct);
            return summary.Failed.Count == 0 ? ExitCodes.Success : ExitCodes.Failed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            summary.Print(direct: false);
            await Console.Error.WriteLineAsync("Stopped by Ctrl-C: what was written is kept; run the same command again to go on (it also builds the index).");
            return ExitCodes.Interrupted;
        }
        catch (ModelDirectoryException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is StoreMismatchException or StoreLayoutException)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return ExitCodes.StoreMismatch;
        }
        catch (Exception e) when (e is ImportSourceException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException
            || (e is Npgsql.PostgresException && settings.File is null && summary.Read == 0))
        {
            await Console.Error.WriteLineAsync($"The input cannot be read: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (PostgresVectorStore.IsOutage(e))
        {
            await Console.Error.WriteLineAsync($"A database cannot be reached or stopped answering ({e.Message}): what was written is kept; run the same command again to go on.");
            return ExitCodes.DatabaseUnreachable;
        }
    }

    private static async Task WriteAsync(IAsyncEnumerable<ImportRow> rows, BulkLoad load, string model, string variant, ImportSummary summary, Stopwatch clock,
        CancellationToken cancellationToken)
    {
        // Ids seen in this input, by a 64-bit hash of their UTF-8 (10 million ids take ~200 MB as strings would take ~1 GB).
        var seen = new HashSet<ulong>();
        // Batches are written while the next ones are read, on Writers connections: one COPY stream keeps one
        // PostgreSQL backend busy, and reading and parsing would otherwise wait for it (docs/decisions.md, import).
        var batches = Channel.CreateBounded<List<Storage.VectorRow>>(Writers);
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask("importing");
                using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var writers = Enumerable.Range(0, Writers).Select(_ => Task.Run(() => WriteBatchesAsync(failed), CancellationToken.None)).ToArray();
                try
                {
                    var batch = new List<Storage.VectorRow>(Batch);
                    await foreach (var row in rows.WithCancellation(failed.Token))
                    {
                        summary.Read++;
                        if (row.Failure is not null)
                        {
                            summary.Failed.Add((row.Where, row.Failure));
                            continue;
                        }

                        if (!seen.Add(ImportRow.IdHash(row.Id!)))
                        {
                            summary.Failed.Add((row.Where, $"id '{row.Id}' came before in this input; the first one is kept"));
                            continue;
                        }

                        batch.Add(row.ToVectorRow());
                        if (batch.Count < Batch) continue;
                        await batches.Writer.WriteAsync(batch, failed.Token);
                        batch = new List<Storage.VectorRow>(Batch);
                        Report();
                    }

                    if (batch.Count > 0) await batches.Writer.WriteAsync(batch, failed.Token);
                    batches.Writer.TryComplete();
                }
                catch (OperationCanceledException) when (failed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    // A writer failed: its exception, awaited below, says why.
                }
                finally
                {
                    batches.Writer.TryComplete();
                }

                await Task.WhenAll(writers);
                Report();

                void Report()
                {
                    task.Description = $"importing [grey]{summary.Read:N0} read, {summary.Written:N0} written, {summary.Failed.Count:N0} failed, " +
                        $"{summary.Read / Math.Max(0.001, clock.Elapsed.TotalSeconds):N0}/s[/]";
                    // Without a terminal (a Job's log), a line now and then says how far it got.
                    if (!AnsiConsole.Profile.Capabilities.Interactive && summary.Read % (Batch * 20) < Batch)
                    {
                        Console.Error.WriteLine($"importing: {summary.Read:N0} read, {summary.Written:N0} written, {summary.Failed.Count:N0} failed");
                    }
                }
            });

        async Task WriteBatchesAsync(CancellationTokenSource failed)
        {
            try
            {
                await foreach (var batch in batches.Reader.ReadAllAsync(failed.Token))
                {
                    var (created, updated) = await load.WriteAsync(batch, model, variant, failed.Token);
                    summary.Add(created, updated, batch.Count - created - updated);
                }
            }
            catch
            {
                await failed.CancelAsync();
                throw;
            }
        }
    }
}

/// <param name="File">A JSON-lines file, or null with <paramref name="SourceDatabase"/> and <paramref name="Query"/>.</param>
/// <param name="Variant">What the vectors came from (fp32, int8, fp16): the store refuses mixing variants, as for the service.</param>
public sealed record ImportSettings(string? File, string? SourceDatabase, string? Query, string Variant);

public sealed class ImportSummary
{
    /// <summary>Failures printed in full; beyond, only counted (the first ones show what is wrong with the input).</summary>
    private const int Shown = 1_000;

    public long Read { get; set; }

    private long _created;
    private long _updated;
    private long _unchanged;

    public long Created => Interlocked.Read(ref _created);

    public long Updated => Interlocked.Read(ref _updated);

    public long Unchanged => Interlocked.Read(ref _unchanged);

    public long Written => Created + Updated;

    public List<(string Where, string Reason)> Failed { get; } = [];

    public TimeSpan Loaded { get; set; }

    /// <summary>
    /// This process's CPU time while loading: what the import itself costs, apart from the databases it reads and
    /// writes (which may share its cores).
    /// </summary>
    public TimeSpan LoadCpu { get; set; }

    /// <summary>Rows written or found unchanged per second of loading (the index build apart).</summary>
    public double Rate => (Created + Updated + Unchanged) / Math.Max(0.001, Loaded.TotalSeconds);

    public TimeSpan? IndexBuild { get; set; }

    /// <summary>Counts a written batch; writers call it at once.</summary>
    public void Add(long created, long updated, long unchanged)
    {
        Interlocked.Add(ref _created, created);
        Interlocked.Add(ref _updated, updated);
        Interlocked.Add(ref _unchanged, unchanged);
    }

    public void Print(bool direct)
    {
        var rate = Rate;
        var built = IndexBuild is { } build ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"; indexes built in {build.TotalSeconds:F1} s") : string.Empty;
        Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"imported {Created + Updated:N0} ({Created:N0} new, {Updated:N0} replaced), skipped {Unchanged:N0} unchanged, failed {Failed.Count:N0}; " +
            $"{Loaded.TotalSeconds:F1} s, {rate:N0} vectors/s{(direct ? " (COPY into the empty store)" : string.Empty)}, " +
            $"import's own CPU {LoadCpu.TotalSeconds:F1} s ({LoadCpu.TotalSeconds * 1e6 / Math.Max(1, Created + Updated + Unchanged):F1} s per million rows){built}"));
        foreach (var (where, reason) in Failed.Take(Shown)) Console.WriteLine($"  failed {where}: {reason}");
        if (Failed.Count > Shown) Console.WriteLine($"  ... and {Failed.Count - Shown:N0} more failed rows");
    }
}

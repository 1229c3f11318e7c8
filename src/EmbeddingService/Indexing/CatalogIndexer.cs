using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using EmbeddingService.Imaging;
using EmbeddingService.Importing;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using Spectre.Console;

namespace EmbeddingService.Indexing;

/// <summary>
/// Indexes a catalogue: entries stream in (a folder's files, a manifest's lines), this process keeps its shard's, asks
/// the store which it holds already a chunk at a time, fetches the images (files, or URLs with bounded concurrency)
/// and embeds them through the same batching pipeline the service uses (several in flight, so runs are full batches),
/// writing a batch at a time (binary COPY, then one upsert). A file whose SHA-256 and metadata are stored is skipped;
/// a URL whose id and metadata are stored is not fetched again (unless <c>--recheck</c>): a rerun resumes.
/// </summary>
public sealed class CatalogIndexer(ImageEmbedder embedder, IVectorStore store, ImageFetcher fetcher, string variant, bool thumbnails, int inFlight)
{
    /// <summary>Rows per COPY and upsert: large enough to amortize the round trips, small enough to keep little in memory.</summary>
    private const int WriteBatch = 64;

    /// <summary>Ids asked of the store at once (one query), before their images are fetched.</summary>
    private const int LookupChunk = 512;

    public async Task<IndexSummary> RunAsync(IAsyncEnumerable<CatalogEntry> entries, IndexRun run, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(run);
        var summary = new IndexSummary { Shard = run.Shard };
        var clock = Stopwatch.StartNew();
        var live = AnsiConsole.Profile.Capabilities.Interactive;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask("indexing");
                var embedded = Channel.CreateBounded<NewItem>(inFlight * 4);
                var work = Channel.CreateBounded<(CatalogEntry Entry, Storage.ItemFingerprint? Stored)>(LookupChunk * 2);
                // A write that fails (the database went away) stops every stage, which would otherwise wait forever
                // for room in a channel that nothing drains any more.
                using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var writer = WriteAsync(embedded.Reader, run, summary, failed);
                var reader = ReadAsync(entries, run, summary, work.Writer, failed.Token);
                using var embedding = new SemaphoreSlim(inFlight);
                var lastLine = Stopwatch.StartNew();
                try
                {
                    var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(inFlight, run.Downloads), CancellationToken = failed.Token };
                    await Parallel.ForEachAsync(work.Reader.ReadAllAsync(failed.Token), parallel, async (next, token) =>
                    {
                        var item = await IndexOneAsync(next.Entry, next.Stored, run.Recheck, summary, embedding, token);
                        if (item is not null) await embedded.Writer.WriteAsync(item, token);
                        summary.CountDone();
                        task.Description = $"indexing [grey]{summary.Describe(clock.Elapsed)}[/]";
                        // Without a terminal (a Kubernetes pod's log), a line now and then says how far it got.
                        if (!live && lastLine.Elapsed > ProgressEvery)
                        {
                            lock (lastLine)
                            {
                                if (lastLine.Elapsed > ProgressEvery)
                                {
                                    lastLine.Restart();
                                    Console.Error.WriteLine($"indexing {summary.Describe(clock.Elapsed)}");
                                }
                            }
                        }
                    });
                    await reader;
                }
                catch (OperationCanceledException) when (failed.IsCancellationRequested)
                {
                    // Ctrl-C, or a stage failed: its own exception, awaited below, says why.
                }
                finally
                {
                    embedded.Writer.TryComplete();
                    // Written even when stopping: what was embedded is kept. A failed write throws here.
                    await writer;
                    await reader.ContinueWith(_ => { }, TaskScheduler.Default);
                }

                // The input could not be read (not an entry's fault): say so, after keeping what was written.
                if (reader.Exception?.InnerException is { } broken and not OperationCanceledException) throw broken;
            });

        summary.Elapsed = clock.Elapsed;
        summary.Cancelled = cancellationToken.IsCancellationRequested;
        return summary;
    }

    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(10);

    /// <summary>Entries in, this shard's out with what the store holds of each; a chunk of ids asked at a time.</summary>
    private async Task ReadAsync(IAsyncEnumerable<CatalogEntry> entries, IndexRun run, IndexSummary summary,
        ChannelWriter<(CatalogEntry, Storage.ItemFingerprint?)> work, CancellationToken cancellationToken)
    {
        try
        {
            // Ids seen in this input (this shard's), by a 64-bit hash: ten million take ~200 MB, as strings ~1 GB.
            var seen = new HashSet<ulong>();
            var chunk = new List<CatalogEntry>(LookupChunk);
            await foreach (var entry in entries.WithCancellation(cancellationToken))
            {
                summary.CountRead();
                if (entry.Failure is not null)
                {
                    summary.Failed.Add((entry.Where, entry.Failure));
                    continue;
                }

                if (!run.Shard.Contains(entry.Id!)) continue;
                summary.CountInShard();
                if (!seen.Add(ImportRow.IdHash(entry.Id!)))
                {
                    summary.Failed.Add((entry.Where, $"id '{entry.Id}' is given by an entry before this one; the first is kept{run.DuplicateHint}"));
                    continue;
                }

                chunk.Add(entry);
                if (chunk.Count == LookupChunk) await FlushAsync();
            }

            await FlushAsync();
            work.TryComplete();

            async Task FlushAsync()
            {
                if (chunk.Count == 0) return;
                var stored = await store.GetFingerprintsAsync([.. chunk.Select(e => e.Id!)], cancellationToken);
                foreach (var entry in chunk) await work.WriteAsync((entry, stored.TryGetValue(entry.Id!, out var known) ? known : null), cancellationToken);
                chunk.Clear();
            }
        }
        catch (Exception e)
        {
            work.TryComplete(e);
            throw;
        }
    }

    /// <summary>Writes what comes, a batch at a time (one COPY and upsert each), until the stream ends.</summary>
    private async Task WriteAsync(ChannelReader<NewItem> embedded, IndexRun run, IndexSummary summary, CancellationTokenSource failed)
    {
        try
        {
            await WriteAllAsync(embedded, run, summary);
        }
        catch
        {
            await failed.CancelAsync();
            throw;
        }
    }

    private async Task WriteAllAsync(ChannelReader<NewItem> embedded, IndexRun run, IndexSummary summary)
    {
        var batch = new List<NewItem>(WriteBatch);
        async Task FlushAsync()
        {
            // Which arrive with a near duplicate stored (by the vector index, one round trip for the batch).
            var near = await store.FindNeighboursAsync([.. batch.Select(i => (i.Id, i.Embedding))], run.DuplicateRadius, 1, CancellationToken.None);
            var duplicates = near.Where(n => n.Neighbours.Count > 0).ToDictionary(n => n.Id, n => n.Neighbours[0], StringComparer.Ordinal);
            foreach (var (id, neighbour) in duplicates) summary.CountNearDuplicate(id, neighbour, run.SkipDuplicates);
            if (run.SkipDuplicates) batch.RemoveAll(i => duplicates.ContainsKey(i.Id));
            if (batch.Count > 0) summary.CountWritten(batch.Count, await store.UpsertManyAsync(batch, CancellationToken.None));
            batch.Clear();
        }

        await foreach (var item in embedded.ReadAllAsync())
        {
            batch.Add(item);
            if (batch.Count == WriteBatch) await FlushAsync();
        }

        if (batch.Count > 0) await FlushAsync();
    }

    private async Task<NewItem?> IndexOneAsync(CatalogEntry entry, Storage.ItemFingerprint? stored, bool recheck, IndexSummary summary,
        SemaphoreSlim embedding, CancellationToken cancellationToken)
    {
        var sameMetadata = stored is { } known && known.Product == entry.Words.Product && known.Text == entry.Words.Text
            && JsonNode.DeepEquals(JsonNode.Parse(known.MetadataJson), JsonNode.Parse(entry.MetadataJson));
        if (sameMetadata && entry.Url is not null && !recheck)
        {
            // Stored with this metadata: not fetched again (--recheck fetches it to compare).
            summary.CountSkipped();
            return null;
        }

        try
        {
            using var image = entry.Url is { } url ? await fetcher.FetchAsync(url, cancellationToken) : await ReadFileAsync(entry.Path!, cancellationToken);
            if (image.Failure is not null)
            {
                summary.Failed.Add((entry.Where, image.Failure));
                return null;
            }

            var sha = Convert.ToHexStringLower(SHA256.HashData(image.Bytes.Span));
            if (sameMetadata && stored!.ImageSha256 == sha)
            {
                summary.CountSkipped();
                return null;
            }

            await embedding.WaitAsync(cancellationToken);
            ImageEmbedding embedded;
            try
            {
                embedded = await embedder.EmbedAsync(image.Bytes, thumbnails, cancellationToken);
            }
            finally
            {
                embedding.Release();
            }

            return new NewItem(entry.Id!, embedded.Vector, embedded.Model, variant, sha, entry.MetadataJson, embedded.Thumbnail,
                embedded.Thumbnail is null ? null : ThumbnailMaker.ContentType, entry.Words.Product, entry.Words.Text, embedded.Pixels);
        }
        catch (Exception e) when (e is ImageRejectedException or IOException or UnauthorizedAccessException)
        {
            summary.Failed.Add((entry.Where, e.Message));
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    private static async Task<Fetched> ReadFileAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        var length = (int)Math.Min(file.Length, int.MaxValue - 64);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(1, length));
        try
        {
            await file.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken);
            return Fetched.Of(buffer, length);
        }
        catch
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}

/// <summary>How a run goes: its shard, downloads at once, whether stored URLs are fetched again to compare.</summary>
/// <param name="DuplicateHint">Added to a duplicate id's failure (a folder's: use --id path).</param>
/// <param name="DuplicateRadius">An item with a stored one within this cosine distance arrived as a near duplicate (DUPLICATE_MAX_DISTANCE).</param>
/// <param name="SkipDuplicates">Such items are not stored (--skip-duplicates).</param>
public sealed record IndexRun(Shard Shard, int Downloads, bool Recheck, string DuplicateHint, double DuplicateRadius = 0.01, bool SkipDuplicates = false);

/// <summary>What an index run did; its counters are bumped by many tasks at once.</summary>
public sealed class IndexSummary
{
    /// <summary>Failures printed in full; beyond, only counted (the first ones show what is wrong with the input).</summary>
    private const int Shown = 1_000;

    private long _read;
    private long _inShard;
    private long _done;
    private long _indexed;
    private long _created;
    private long _skipped;

    public Shard Shard { get; init; } = Shard.Whole;

    /// <summary>Entries of the input read (every shard's).</summary>
    public long Read => Interlocked.Read(ref _read);

    /// <summary>Of those, this shard's.</summary>
    public long InShard => Interlocked.Read(ref _inShard);

    /// <summary>Embedded and written.</summary>
    public long Indexed => Interlocked.Read(ref _indexed);

    public long Created => Interlocked.Read(ref _created);

    public long Skipped => Interlocked.Read(ref _skipped);

    public ConcurrentBag<(string Where, string Reason)> Failed { get; } = [];

    /// <summary>Items that arrived with a stored item within DUPLICATE_MAX_DISTANCE: the nearest one, and whether the item was left out.</summary>
    public ConcurrentBag<(string Id, Neighbour Nearest, bool Skipped)> NearDuplicates { get; } = [];

    public TimeSpan Elapsed { get; set; }

    public bool Cancelled { get; set; }

    public void CountRead() => Interlocked.Increment(ref _read);

    public void CountInShard() => Interlocked.Increment(ref _inShard);

    public void CountDone() => Interlocked.Increment(ref _done);

    public void CountSkipped() => Interlocked.Increment(ref _skipped);

    public void CountNearDuplicate(string id, Neighbour nearest, bool skipped) => NearDuplicates.Add((id, nearest, skipped));

    public void CountWritten(int written, int created)
    {
        Interlocked.Add(ref _indexed, written);
        Interlocked.Add(ref _created, created);
    }

    public string Describe(TimeSpan elapsed) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Interlocked.Read(ref _done):N0} of {InShard:N0} done ({Indexed:N0} written, {Skipped:N0} unchanged, {Failed.Count:N0} failed), {Indexed / Math.Max(0.001, elapsed.TotalSeconds):F1} images/s");

    /// <summary>Plain lines, unwrapped, so that logs and scripts read them whole.</summary>
    public void Print()
    {
        var rate = Indexed / Math.Max(0.001, Elapsed.TotalSeconds);
        Console.WriteLine(System.FormattableString.Invariant(
            $"indexed {Indexed} ({Created} new, {Indexed - Created} replaced), skipped {Skipped} unchanged, failed {Failed.Count}; {Elapsed.TotalSeconds:F1} s, {rate:F1} images/s"));
        if (!Shard.IsWhole)
        {
            Console.WriteLine(System.FormattableString.Invariant(
                $"shard {Shard}: {InShard} of the {Read} entries read are this shard's ({InShard * 100.0 / Math.Max(1, Read):F1} %)"));
        }

        if (!NearDuplicates.IsEmpty)
        {
            var skipped = NearDuplicates.Count(d => d.Skipped);
            Console.WriteLine(System.FormattableString.Invariant(
                $"near duplicates: {NearDuplicates.Count} arrived with a stored item within the duplicate distance{(skipped > 0 ? $", {skipped} not stored (--skip-duplicates)" : "; see GET /duplicates")}"));
            foreach (var (id, nearest, wasSkipped) in NearDuplicates.OrderBy(d => d.Id, StringComparer.Ordinal).Take(Shown))
            {
                Console.WriteLine(System.FormattableString.Invariant($"  {(wasSkipped ? "not stored" : "near duplicate")} {id}: of {nearest.Id} (distance {nearest.Distance:F4})"));
            }
        }

        foreach (var (where, reason) in Failed.OrderBy(f => f.Where, StringComparer.Ordinal).Take(Shown))
        {
            Console.WriteLine($"  failed {where}: {reason}");
        }

        if (Failed.Count > Shown) Console.WriteLine($"  ... and {Failed.Count - Shown:N0} more failed");
        if (Cancelled)
        {
            Console.WriteLine("stopped by Ctrl-C: what was indexed is kept; run the same command again to go on.");
        }
    }
}

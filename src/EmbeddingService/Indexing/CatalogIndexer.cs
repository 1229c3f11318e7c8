using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using Spectre.Console;

namespace EmbeddingService.Indexing;

/// <summary>
/// Walks a folder, embeds each image through the same batching pipeline the service uses (several in flight, so
/// runs are full batches), and writes them a batch at a time (binary COPY, then one upsert). Images whose SHA-256
/// and metadata are already stored are skipped, so a rerun resumes where the last one stopped.
/// </summary>
public sealed class CatalogIndexer(ImageEmbedder embedder, IVectorStore store, string variant, bool thumbnails, int inFlight)
{
    /// <summary>Rows per COPY and upsert: large enough to amortize the round trips, small enough to keep little in memory.</summary>
    private const int WriteBatch = 64;

    private static readonly HashSet<string> Extensions = new([".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"], StringComparer.OrdinalIgnoreCase);

    public async Task<IndexSummary> RunAsync(IndexSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var summary = new IndexSummary();
        var metadata = settings.MetadataFile is null ? [] : ReadMetadata(settings.MetadataFile, summary);
        var files = Directory.EnumerateFiles(settings.Folder, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f)))
            .Order(StringComparer.Ordinal)
            .Select(f => (Path: f, Id: settings.IdFrom == IdFrom.Name ? Path.GetFileName(f) : Path.GetRelativePath(settings.Folder, f).Replace('\\', '/')))
            .ToList();
        foreach (var duplicate in files.GroupBy(f => f.Id, StringComparer.Ordinal).Where(g => g.Count() > 1).SelectMany(g => g.Skip(1)))
        {
            summary.Failed.Add((duplicate.Path, $"id '{duplicate.Id}' is given by another file too (use --id path)"));
        }

        files = [.. files.DistinctBy(f => f.Id, StringComparer.Ordinal)];
        var stored = new Dictionary<string, (string? Sha, string Metadata)>(StringComparer.Ordinal);
        foreach (var chunk in files.Chunk(1000))
        {
            foreach (var (id, fingerprint) in await store.GetFingerprintsAsync([.. chunk.Select(f => f.Id)], cancellationToken)) stored[id] = fingerprint;
        }

        var clock = Stopwatch.StartNew();
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask("indexing", maxValue: Math.Max(1, files.Count));
                // One stream: embedding never waits for a write (a batch is written while the next is embedded), so
                // the pipeline's runs stay full batches from the first image to the last.
                var embedded = Channel.CreateBounded<NewItem>(inFlight * 4);
                // A write that fails (the database went away) stops the producers, which would otherwise wait
                // forever for room in the channel that nothing drains any more.
                using var writeFailed = new CancellationTokenSource();
                var writer = WriteAsync(embedded.Reader, summary, writeFailed);
                try
                {
                    await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = inFlight, CancellationToken = writeFailed.Token }, async (file, _) =>
                    {
                        if (cancellationToken.IsCancellationRequested) return;
                        var item = await IndexOneAsync(file.Path, file.Id, metadata.GetValueOrDefault(file.Id, "{}"), stored, summary, cancellationToken);
                        if (item is not null) await embedded.Writer.WriteAsync(item, writeFailed.Token);
                        task.Increment(1);
                        task.Description = $"indexing [grey]{task.Value:F0}/{files.Count}, {task.Value / Math.Max(0.001, clock.Elapsed.TotalSeconds):F1} files/s[/]";
                    });
                }
                catch (OperationCanceledException) when (writeFailed.IsCancellationRequested)
                {
                    // The writer's own exception says why, below.
                }
                finally
                {
                    embedded.Writer.TryComplete();
                    // Written even when stopping: what was embedded is kept. A failed write throws here.
                    await writer;
                }
            });

        summary.Elapsed = clock.Elapsed;
        summary.Cancelled = cancellationToken.IsCancellationRequested;
        return summary;
    }

    /// <summary>Writes what comes, a batch at a time (one COPY and upsert each), until the stream ends.</summary>
    private async Task WriteAsync(ChannelReader<NewItem> embedded, IndexSummary summary, CancellationTokenSource failed)
    {
        try
        {
            await WriteAllAsync(embedded, summary);
        }
        catch
        {
            await failed.CancelAsync();
            throw;
        }
    }

    private async Task WriteAllAsync(ChannelReader<NewItem> embedded, IndexSummary summary)
    {
        var batch = new List<NewItem>(WriteBatch);
        async Task FlushAsync()
        {
            summary.Created += await store.UpsertManyAsync(batch, CancellationToken.None);
            summary.Indexed += batch.Count;
            batch.Clear();
        }

        await foreach (var item in embedded.ReadAllAsync())
        {
            batch.Add(item);
            if (batch.Count == WriteBatch) await FlushAsync();
        }

        if (batch.Count > 0) await FlushAsync();
    }

    private async Task<NewItem?> IndexOneAsync(string path, string id, string metadata, Dictionary<string, (string? Sha, string Metadata)> stored,
        IndexSummary summary, CancellationToken cancellationToken)
    {
        try
        {
            var bytes = await File.ReadAllBytesAsync(path, cancellationToken);
            var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
            if (stored.TryGetValue(id, out var existing) && existing.Sha == sha && JsonNode.DeepEquals(JsonNode.Parse(existing.Metadata), JsonNode.Parse(metadata)))
            {
                summary.CountSkipped();
                return null;
            }

            var embedding = await embedder.EmbedAsync(bytes, thumbnails, cancellationToken);
            return new NewItem(id, embedding.Vector, ClipModel.DisplayName, variant, sha, metadata, embedding.Thumbnail, embedding.Thumbnail is null ? null : ThumbnailMaker.ContentType);
        }
        catch (Exception e) when (e is ImageRejectedException or IOException or UnauthorizedAccessException)
        {
            summary.Failed.Add((path, e.Message));
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>One JSON object per line: "id" names the item, every other property is its metadata.</summary>
    private static Dictionary<string, string> ReadMetadata(string file, IndexSummary summary)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var number = 0;
        foreach (var line in File.ReadLines(file))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonNode.Parse(line) is JsonObject entry && entry["id"]?.GetValue<string>() is { } id)
                {
                    entry.Remove("id");
                    metadata[id] = entry.ToJsonString();
                    continue;
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
            }

            summary.Failed.Add(($"{file}:{number}", "not a JSON object with a string \"id\""));
        }

        return metadata;
    }
}

/// <summary>What an index run did.</summary>
public sealed class IndexSummary
{
    private int _skipped;

    public int Indexed { get; set; }

    public int Created { get; set; }

    public int Skipped => Volatile.Read(ref _skipped);

    public ConcurrentBag<(string File, string Reason)> Failed { get; } = [];

    public TimeSpan Elapsed { get; set; }

    public bool Cancelled { get; set; }

    public void CountSkipped() => Interlocked.Increment(ref _skipped);

    /// <summary>Plain lines, unwrapped, so that logs and scripts read them whole.</summary>
    public void Print()
    {
        var rate = Indexed / Math.Max(0.001, Elapsed.TotalSeconds);
        Console.WriteLine(System.FormattableString.Invariant(
            $"indexed {Indexed} ({Created} new, {Indexed - Created} replaced), skipped {Skipped} unchanged, failed {Failed.Count}; {Elapsed.TotalSeconds:F1} s, {rate:F1} images/s"));
        foreach (var (file, reason) in Failed.OrderBy(f => f.File, StringComparer.Ordinal))
        {
            Console.WriteLine($"  failed {file}: {reason}");
        }

        if (Cancelled)
        {
            Console.WriteLine("stopped by Ctrl-C: what was indexed is kept; run the same command again to go on.");
        }
    }
}

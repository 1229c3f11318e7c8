using System.Diagnostics;
using System.Globalization;
using EmbeddingService.Api;
using EmbeddingService.CommandLine;
using EmbeddingService.Logging;
using EmbeddingService.Model;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Classification;

/// <param name="Labels">One label a line.</param>
/// <param name="Templates">One template a line (each holding {}); null: the product-photo set.</param>
/// <param name="FilterJson">Only the items whose metadata contains this object.</param>
public sealed record TagSettings(string Labels, string Key, string? Templates, string? FilterJson, double MinScore, bool DryRun);

/// <summary>
/// <c>tag --labels FILE --key NAME</c>: each stored item's best label (zero-shot, as <c>POST /classify</c> scores it)
/// written into its metadata under NAME, from the stored vectors alone: the labels are embedded once, every vector is
/// read once (binary COPY) and scored against them (a matrix product, not a search); an item whose best score is below
/// --min-score is left alone and named. Only what differs is written, so a rerun resumes.
/// </summary>
public static class TagCommand
{
    public const string Name = "tag";

    /// <summary>Items per write (one UPDATE from arrays).</summary>
    private const int WriteBatch = 5_000;

    private const int Shown = 1_000;

    public static async Task<int> RunAsync(TagSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["LOG_LEVEL"] ??= "warning";
        builder.Configuration["MODEL_TOWERS"] ??= "text";
        builder.AddServiceLogging();
        builder.Services.AddModel(builder.Configuration, startInBackground: false);
        builder.Services.AddImageEmbedding(builder.Configuration);
        builder.Services.AddClassification(builder.Configuration);
        builder.Services.AddOptions<StorageOptions>().Bind(builder.Configuration).ValidateDataAnnotations();
        using var host = builder.Build();
        var storage = host.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        if (!storage.Enabled)
        {
            await Console.Error.WriteLineAsync("DATABASE_URL is not set: tag writes labels into the items of the store in that database.");
            return ExitCodes.Usage;
        }

        try
        {
            var labels = Lines(settings.Labels);
            var templates = settings.Templates is null ? ZeroShot.ProductTemplates : Lines(settings.Templates);
            if (labels.Count is < 2 or > 1000 || labels.Distinct(StringComparer.Ordinal).Count() != labels.Count)
            {
                await Console.Error.WriteLineAsync($"{settings.Labels} must hold 2 to 1,000 different labels, one a line; it holds {labels.Count}.");
                return ExitCodes.Usage;
            }

            if (templates.Count == 0 || templates.Any(t => !t.Contains("{}", StringComparison.Ordinal)))
            {
                await Console.Error.WriteLineAsync($"Each line of {settings.Templates} is a template holding {{}} where the label goes, e.g. \"a photo of a {{}}.\"");
                return ExitCodes.Usage;
            }

            var card = (await host.Services.GetRequiredService<ModelStartup>().StartAsync(cancellationToken)).Card;
            var variant = host.Services.GetRequiredService<IOptions<ModelOptions>>().Value.Variant.ToString().ToLowerInvariant();
            await using var store = await PostgresVectorStore.OpenAsync(storage, new StoreIdentity(card.Name, variant, card.Dimension), cancellationToken);
            var vectors = await host.Services.GetRequiredService<LabelEmbeddings>().EmbedAsync(labels, templates, cancellationToken);
            var scale = host.Services.GetRequiredService<IOptions<ClassificationOptions>>().Value.LogitScale;
            return await TagAsync(store, settings, labels, [.. vectors], scale, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("Stopped by Ctrl-C: the labels written so far are kept; run the same command again to go on.");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"The input cannot be read: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (CommandFailure.IsKnown(e))
        {
            return await CommandFailure.ExplainAsync(e, "the labels written so far are kept");
        }
    }

    private static async Task<int> TagAsync(PostgresVectorStore store, TagSettings settings, List<string> labels, float[][] vectors, double scale,
        CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var scoring = TimeSpan.Zero;
        var writing = Stopwatch.StartNew();
        writing.Stop();
        long read = 0, unchanged = 0, written = 0, changing = 0;
        var counts = new long[labels.Count];
        var below = new List<(string Id, string Label, double Score)>();
        var pending = new List<(string Id, string Label)>(WriteBatch);
        var similarities = new double[labels.Count];
        var reported = TimeSpan.Zero;
        await foreach (var (id, vector, current) in store.StreamVectorsAsync(settings.FilterJson, settings.Key, cancellationToken))
        {
            var started = Stopwatch.GetTimestamp();
            var (best, score) = ZeroShot.Best(vector, vectors, scale, similarities);
            scoring += Stopwatch.GetElapsedTime(started);
            read++;
            if (score < settings.MinScore)
            {
                below.Add((id, labels[best], score));
                continue;
            }

            counts[best]++;
            if (current == labels[best])
            {
                unchanged++;
                continue;
            }

            changing++;
            pending.Add((id, labels[best]));
            if (pending.Count == WriteBatch) written += await FlushAsync();
            if (clock.Elapsed - reported > TimeSpan.FromSeconds(5))
            {
                reported = clock.Elapsed;
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tagging: {read:N0} items read, {written:N0} written ({read / clock.Elapsed.TotalSeconds:N0}/s)"));
            }
        }

        written += await FlushAsync();
        var perLabel = string.Join(", ", labels.Select((l, i) => (l, counts[i])).Where(c => c.Item2 > 0).OrderByDescending(c => c.Item2).Take(20).Select(c => $"{c.l} {c.Item2:N0}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(settings.DryRun ? "would tag" : "tagged")} {read - below.Count:N0} of {read:N0} items with \"{settings.Key}\" ({(settings.DryRun ? $"{changing:N0} would change" : $"{written:N0} written")}, " +
            $"{unchanged:N0} already so), {below.Count:N0} below --min-score {settings.MinScore}; {clock.Elapsed.TotalSeconds:F1} s: " +
            $"{read / Math.Max(1e-6, scoring.TotalSeconds):N0} items/s scored ({labels.Count} labels), writing {writing.Elapsed.TotalSeconds:F1} s"));
        if (perLabel.Length > 0) Console.WriteLine($"  labels: {perLabel}");
        foreach (var (id, label, score) in below.Take(Shown)) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  below --min-score {id}: best {label} at {score:F3}"));
        if (below.Count > Shown) Console.WriteLine($"  ... and {below.Count - Shown:N0} more below --min-score");
        return ExitCodes.Success;

        async Task<int> FlushAsync()
        {
            if (settings.DryRun) pending.Clear();
            if (pending.Count == 0) return 0;
            writing.Start();
            var count = await store.WriteTagsAsync(settings.Key, pending, cancellationToken);
            writing.Stop();
            pending.Clear();
            return count;
        }
    }

    private static List<string> Lines(string file) =>
        [.. File.ReadLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))];
}

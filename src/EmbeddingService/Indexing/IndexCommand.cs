using EmbeddingService.Api;
using EmbeddingService.CommandLine;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using EmbeddingService.Logging;

namespace EmbeddingService.Indexing;

/// <summary><c>index FOLDER | --manifest FILE|URL [--shard I/N] ...</c>: embeds a catalogue's images into the store (parsed by <see cref="ServiceCommands"/>).</summary>
public static class IndexCommand
{
    public const string Name = "index";
    public static async Task<int> RunAsync(IndexSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);

        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["LOG_LEVEL"] ??= "warning";
        builder.AddServiceLogging();
        builder.Services.AddModel(builder.Configuration, startInBackground: false);
        builder.Services.AddImageEmbedding(builder.Configuration);
        builder.Services.AddOptions<StorageOptions>().Bind(builder.Configuration).ValidateDataAnnotations();
        // An image fetched by URL is bounded as an upload is (MAX_UPLOAD_BYTES).
        builder.Services.AddOptions<Uploads.UploadOptions>().Bind(builder.Configuration).ValidateDataAnnotations();
        using var host = builder.Build();
        var storage = host.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        if (!storage.Enabled)
        {
            await Console.Error.WriteLineAsync("DATABASE_URL is not set: the index command writes to PostgreSQL + pgvector (scripts/postgres.sh start gives a local one).");
            return ExitCodes.Usage;
        }

        using var interruption = Interruption.Listen();

        try
        {
            var card = (await host.Services.GetRequiredService<ModelStartup>().StartAsync(interruption.Token)).Card;
            var variant = host.Services.GetRequiredService<IOptions<ModelOptions>>().Value.Variant.ToString().ToLowerInvariant();
            await using var store = await OpenStoreAsync(storage, new StoreIdentity(card.Name, variant, card.Dimension), interruption.Token);
            var maxBytes = host.Services.GetRequiredService<IOptions<Uploads.UploadOptions>>().Value.MaxUploadBytes;
            using var fetcher = new ImageFetcher(settings.Fetch with { MaxBytes = maxBytes });
            using var manifestClient = new HttpClient(new SocketsHttpHandler { ConnectTimeout = settings.Fetch.ConnectTimeout }) { Timeout = Timeout.InfiniteTimeSpan };
            var indexer = new CatalogIndexer(host.Services.GetRequiredService<ImageEmbedder>(), store, fetcher, variant, storage.StoreThumbnails,
                Math.Min(settings.Batch, host.Services.GetRequiredService<IOptions<BatchingOptions>>().Value.MaxQueueDepth));
            var entries = settings.Manifest is { } manifest
                ? CatalogSources.ManifestAsync(manifest, manifestClient, interruption.Token)
                : CatalogSources.FolderAsync(settings.Folder!, settings.MetadataFile, settings.IdFrom, interruption.Token);
            var run = new IndexRun(settings.Shard, settings.Manifest is null ? settings.Batch : settings.Fetch.Concurrency, settings.Recheck,
                settings.Manifest is null && settings.IdFrom == IdFrom.Name ? " (use --id path)" : string.Empty, storage.DuplicateMaxDistance, settings.SkipDuplicates);
            var summary = await indexer.RunAsync(entries, run, interruption.Token);
            summary.Print();
            return interruption.Requested ? ExitCodes.Interrupted : summary.Failed.IsEmpty ? ExitCodes.Success : ExitCodes.Failed;
        }
        catch (Exception e) when (e is CatalogSourceException or FileNotFoundException or DirectoryNotFoundException or HttpRequestException)
        {
            await Console.Error.WriteLineAsync($"The input cannot be read: {e.Message}");
            return ExitCodes.Usage;
        }
        catch (Exception e) when (CommandFailure.IsKnown(e))
        {
            return await CommandFailure.ExplainAsync(e, "what was written is kept");
        }
    }

    private static async Task<PostgresVectorStore> OpenStoreAsync(StorageOptions options, StoreIdentity identity, CancellationToken cancellationToken)
    {
        try
        {
            return await PostgresVectorStore.OpenAsync(options, identity, cancellationToken);
        }
        catch (Exception e) when (PostgresVectorStore.IsOutage(e))
        {
            throw new StorageUnavailableException($"The database in DATABASE_URL cannot be reached: {e.Message}", e);
        }
    }
}

public enum IdFrom
{
    Name,
    Path,
}

/// <param name="Folder">A folder of images, or null with <paramref name="Manifest"/>.</param>
/// <param name="Manifest">A JSON-lines manifest (a file or an http(s) URL) of ids with paths or URLs.</param>
/// <param name="Recheck">Fetch URLs already stored to compare their contents (else they are skipped unfetched).</param>
/// <param name="SkipDuplicates">Items that arrive with a stored near duplicate (within DUPLICATE_MAX_DISTANCE) are not stored.</param>
public sealed record IndexSettings(string? Folder, string? Manifest, string? MetadataFile, IdFrom IdFrom, int Batch, Shard Shard, FetchOptions Fetch, bool Recheck,
    bool SkipDuplicates = false);

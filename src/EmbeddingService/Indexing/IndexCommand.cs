using EmbeddingService.Api;
using EmbeddingService.Hosting;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace EmbeddingService.Indexing;

/// <summary><c>index &lt;folder&gt; [--metadata file.jsonl] [--id name|path] [--batch N]</c>: embeds a folder of images into the store.</summary>
public static class IndexCommand
{
    public const string Name = "index";
    private const string Usage = "usage: EmbeddingService index <folder> [--metadata file.jsonl] [--id name|path] [--batch N]   (DATABASE_URL must be set)";

    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (!TryParse(args, out var settings, out var error))
        {
            await Console.Error.WriteLineAsync(error);
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }

        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["LOG_LEVEL"] ??= "warning";
        builder.AddServiceLogging();
        builder.Services.AddModel(builder.Configuration, startInBackground: false);
        builder.Services.AddImageEmbedding(builder.Configuration);
        builder.Services.AddOptions<StorageOptions>().Bind(builder.Configuration).ValidateDataAnnotations();
        using var host = builder.Build();
        var storage = host.Services.GetRequiredService<IOptions<StorageOptions>>().Value;
        if (!storage.Enabled)
        {
            await Console.Error.WriteLineAsync("DATABASE_URL is not set: the index command writes to PostgreSQL + pgvector (scripts/postgres.sh start gives a local one).");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            // The first Ctrl-C stops cleanly, keeping what was written; a second one is the default (immediate).
            e.Cancel = !cancel.IsCancellationRequested;
            cancel.Cancel();
        };

        try
        {
            var state = host.Services.GetRequiredService<ModelState>();
            await host.Services.GetRequiredService<ModelProvisioner>().EnsureAsync(forceDownload: false, cancel.Token);
            var model = host.Services.GetRequiredService<ModelLoader>().Load(host.Services.GetRequiredService<IOptions<ModelOptions>>().Value.Files);
            state.SetReady(new ServingModel(model, host.Services.GetRequiredService<IOptions<BatchingOptions>>().Value, host.Services.GetRequiredService<ILoggerFactory>()));
            var variant = host.Services.GetRequiredService<IOptions<ModelOptions>>().Value.Variant.ToString().ToLowerInvariant();
            await using var store = await OpenStoreAsync(storage, new StoreIdentity(ClipModel.DisplayName, variant, 512), cancel.Token);
            var indexer = new CatalogIndexer(host.Services.GetRequiredService<ImageEmbedder>(), store, variant, storage.StoreThumbnails,
                Math.Min(settings.Batch, host.Services.GetRequiredService<IOptions<BatchingOptions>>().Value.MaxQueueDepth));
            var summary = await indexer.RunAsync(settings, cancel.Token);
            summary.Print();
            return cancel.IsCancellationRequested ? 130 : summary.Failed.IsEmpty ? 0 : 1;
        }
        catch (Exception e) when (e is ModelDirectoryException or Download.ModelDownloadException or StoreMismatchException or StorageUnavailableException or PostgresException)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 1;
        }
        catch (Exception e) when (PostgresVectorStore.IsOutage(e))
        {
            await Console.Error.WriteLineAsync($"The database stopped answering during the run ({e.Message}): what was written is kept; run the same command again to go on.");
            return 1;
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

    private static bool TryParse(string[] args, out IndexSettings settings, out string error)
    {
        settings = new IndexSettings(string.Empty, null, IdFrom.Name, 32);
        error = string.Empty;
        for (var i = 0; i < args.Length; i++)
        {
            string? Next() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--metadata" when Next() is { } file:
                    settings = settings with { MetadataFile = file };
                    break;
                case "--id" when Next() is "name" or "path":
                    settings = settings with { IdFrom = args[i] == "path" ? IdFrom.Path : IdFrom.Name };
                    break;
                case "--batch" when int.TryParse(Next(), System.Globalization.CultureInfo.InvariantCulture, out var batch) && batch is >= 1 and <= 1024:
                    settings = settings with { Batch = batch };
                    break;
                case var folder when !folder.StartsWith("--", StringComparison.Ordinal) && settings.Folder.Length == 0:
                    settings = settings with { Folder = folder };
                    break;
                default:
                    error = $"unexpected argument '{args[i]}'";
                    return false;
            }
        }

        if (settings.Folder.Length == 0 || !Directory.Exists(settings.Folder))
        {
            error = settings.Folder.Length == 0 ? "no folder given" : $"{settings.Folder} is not a folder";
            return false;
        }

        return true;
    }
}

public enum IdFrom
{
    Name,
    Path,
}

public sealed record IndexSettings(string Folder, string? MetadataFile, IdFrom IdFrom, int Batch);

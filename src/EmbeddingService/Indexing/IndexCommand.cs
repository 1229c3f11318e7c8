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

/// <summary><c>index &lt;folder&gt; [--metadata file.jsonl] [--id name|path] [--batch N]</c>: embeds a folder of images into the store (parsed by <see cref="ServiceCommands"/>).</summary>
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
            await host.Services.GetRequiredService<ModelStartup>().StartAsync(interruption.Token);
            var variant = host.Services.GetRequiredService<IOptions<ModelOptions>>().Value.Variant.ToString().ToLowerInvariant();
            await using var store = await OpenStoreAsync(storage, new StoreIdentity(ClipModel.DisplayName, variant, 512), interruption.Token);
            var indexer = new CatalogIndexer(host.Services.GetRequiredService<ImageEmbedder>(), store, variant, storage.StoreThumbnails,
                Math.Min(settings.Batch, host.Services.GetRequiredService<IOptions<BatchingOptions>>().Value.MaxQueueDepth));
            var summary = await indexer.RunAsync(settings, interruption.Token);
            summary.Print();
            return interruption.Requested ? ExitCodes.Interrupted : summary.Failed.IsEmpty ? ExitCodes.Success : ExitCodes.Failed;
        }
        catch (Exception e) when (e is ModelDirectoryException or Download.ModelDownloadException)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is StoreMismatchException or StoreLayoutException)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return ExitCodes.StoreMismatch;
        }
        catch (Exception e) when (e is StorageUnavailableException || PostgresVectorStore.IsOutage(e))
        {
            await Console.Error.WriteLineAsync($"The database cannot be reached or stopped answering ({e.Message}): what was written is kept; run the same command again to go on.");
            return ExitCodes.DatabaseUnreachable;
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

public sealed record IndexSettings(string Folder, string? MetadataFile, IdFrom IdFrom, int Batch);

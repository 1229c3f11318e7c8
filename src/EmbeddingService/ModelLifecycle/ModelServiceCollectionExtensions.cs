using EmbeddingService.Download;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.Extensions.Configuration;
using EmbeddingService.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EmbeddingService.ModelLifecycle;

public static class ModelServiceCollectionExtensions
{
    /// <summary>Model options, download, loading, and (for the server) loading in the background at start.</summary>
    public static IServiceCollection AddModel(this IServiceCollection services, IConfiguration configuration, bool startInBackground = true)
    {
        services.AddOptions<ModelOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<InferenceOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<BatchingOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new OrtSessionFactory(
            sp.GetRequiredService<IOptions<InferenceOptions>>().Value, sp.GetRequiredService<ILoggerFactory>().CreateLogger<OrtSessionFactory>()));
        services.AddSingleton<ModelLoader>();
        services.AddSingleton<ModelState>();
        services.TryAddSingleton<ServiceMetrics>();
        services.AddSingleton(sp => new HubFileDownloader(
            HubFileDownloader.CreateClient(), sp.GetRequiredService<IOptions<ModelOptions>>().Value, sp.GetRequiredService<ILogger<HubFileDownloader>>()));
        services.AddSingleton<ModelProvisioner>();
        services.AddSingleton<ModelStartup>();
        if (startInBackground)
        {
            services.AddHostedService<ModelStartupService>();
        }

        return services;
    }
}

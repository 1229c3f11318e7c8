using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace EmbeddingService.Storage;

public static class StorageServiceCollectionExtensions
{
    /// <summary>The vector store when DATABASE_URL is set; without it the storage endpoints answer 503 saying how to enable them.</summary>
    public static IServiceCollection AddStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<StorageState>();
        services.AddHostedService<StorageStartupService>();
        return services;
    }
}

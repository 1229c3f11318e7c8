using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace EmbeddingService.Classification;

public static class ClassificationServiceCollectionExtensions
{
    /// <summary>Zero-shot tags (<c>POST /classify</c>): the label embeddings and their cache, LOGIT_SCALE.</summary>
    public static IServiceCollection AddClassification(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ClassificationOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<LabelEmbeddings>();
        return services;
    }
}

using System.Net;
using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace EmbeddingService.Api;

public static class ApiServiceCollectionExtensions
{
    /// <summary>Kestrel on HOST:PORT, problem JSON, and the OpenAPI document.</summary>
    public static WebApplicationBuilder AddApi(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<ApiOptions>().Bind(builder.Configuration).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<RequestLimits>().Bind(builder.Configuration).ValidateDataAnnotations().ValidateOnStart();
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<IOptions<ApiOptions>>().Value;
            kestrel.AddServerHeader = false;
            if (IPAddress.TryParse(options.Host, out var address))
            {
                kestrel.Listen(address, options.Port);
            }
            else
            {
                kestrel.ListenLocalhost(options.Port);
            }
        });
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
            context.ProblemDetails.Detail ??= DefaultDetail(context.HttpContext.Request, context.ProblemDetails.Status));
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            // Every member is the snake_case of its C# name, as the replaced FastAPI service wrote them.
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
        });
        builder.Services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo { Title = "Visual search embedding service", Version = "1.0.0" };
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    /// <summary>Decoding, preprocessing and embedding of uploaded images.</summary>
    public static IServiceCollection AddImageEmbedding(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ImagingOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new ImageDecoder(sp.GetRequiredService<IOptions<ImagingOptions>>().Value));
        services.AddSingleton<ImageEmbedder>();
        services.AddSingleton<TextEmbedder>();
        return services;
    }

    /// <summary>Any error, even an unforeseen one or an unknown route, answers in problem JSON.</summary>
    public static WebApplication UseProblemResponses(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }

    private static string DefaultDetail(HttpRequest request, int? status) => status switch
    {
        StatusCodes.Status404NotFound => $"There is no endpoint at {request.Path}; GET / lists the endpoints.",
        StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not allowed on {request.Path}; GET / lists the endpoints.",
        StatusCodes.Status415UnsupportedMediaType => $"{request.Path} takes a body of another type (Content-Type '{request.ContentType}'); /docs shows what it takes.",
        >= 500 => "The service failed to handle this request; the error has been logged.",
        _ => "The request could not be handled.",
    };
}

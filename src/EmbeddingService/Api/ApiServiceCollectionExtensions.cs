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
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default));
        builder.Services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo { Title = "Visual search embedding service", Version = "1.0.0" };
                return Task.CompletedTask;
            });
            o.AddOperationTransformer((operation, context, _) =>
            {
                switch (context.Description.RelativePath)
                {
                    case "embed-image":
                        operation.RequestBody = MultipartFileBody(EmbedImageEndpoints.FileField, many: false);
                        break;
                    case "embed-images":
                        operation.RequestBody = MultipartFileBody(EmbedImagesEndpoints.FilesField, many: true);
                        break;
                    case "embed-text":
                        operation.RequestBody = JsonBody(
                            """{"texts": ["red leather handbag", "white running shoes"]}""", """{"text": "red leather handbag"}""");
                        break;
                    case "v1/embeddings":
                        operation.RequestBody = JsonBody(
                            """{"model": "clip", "input": ["red leather handbag", {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo..."}}], "encoding_format": "float"}""",
                            """{"model": "clip", "input": "red leather handbag"}""");
                        break;
                }

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

    private static OpenApiRequestBody MultipartFileBody(string field, bool many)
    {
        var file = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "JPEG, PNG, GIF, BMP, WebP or TIFF" };
        return new()
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["multipart/form-data"] = new()
                {
                    Schema = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Required = new HashSet<string> { field },
                        Properties = new Dictionary<string, IOpenApiSchema>
                        {
                            [field] = many ? new OpenApiSchema { Type = JsonSchemaType.Array, Items = file } : file,
                        },
                    },
                },
            },
        };
    }

    /// <summary>A JSON body with named examples, so the docs page shows requests that work.</summary>
    private static OpenApiRequestBody JsonBody(string batchExample, string singleExample) => new()
    {
        Required = true,
        Content = new Dictionary<string, OpenApiMediaType>
        {
            ["application/json"] = new()
            {
                Schema = new OpenApiSchema { Type = JsonSchemaType.Object },
                Examples = new Dictionary<string, IOpenApiExample>
                {
                    ["single"] = new OpenApiExample { Value = System.Text.Json.Nodes.JsonNode.Parse(singleExample) },
                    ["batch"] = new OpenApiExample { Value = System.Text.Json.Nodes.JsonNode.Parse(batchExample) },
                },
            },
        },
    };
}

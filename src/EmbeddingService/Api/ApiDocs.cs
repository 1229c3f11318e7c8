using System.Text.Json.Nodes;
using Microsoft.OpenApi;

namespace EmbeddingService.Api;

/// <summary>
/// How /docs describes the routes: groups named for what a user does, the error statuses each route answers, and the
/// request bodies the route's intake reads by hand (so ASP.NET Core cannot infer them), each set on its own endpoint.
/// </summary>
public static class ApiDocs
{
    public const string Embeddings = "Embeddings";
    public const string StoreAndSearch = "Store and search";
    public const string Operations = "Operations";

    /// <summary>What every route may answer when keys or rate limits are configured.</summary>
    private static readonly int[] Always = [StatusCodes.Status401Unauthorized, StatusCodes.Status429TooManyRequests];

    /// <summary>Documents these statuses as problem+json answers (plus 401 and 429, which every route may give).</summary>
    public static RouteHandlerBuilder AnswersProblems(this RouteHandlerBuilder builder, params int[] statuses)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var status in statuses.Concat(Always)) builder.ProducesProblem(status);
        return builder;
    }

    /// <summary>A multipart body with the image(s) in <paramref name="field"/>.</summary>
    public static RouteHandlerBuilder WithMultipartFiles(this RouteHandlerBuilder builder, string field, bool many) =>
        builder.AddOpenApiOperationTransformer((operation, _, _) =>
        {
            var file = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "JPEG, PNG, GIF, BMP, WebP or TIFF" };
            operation.RequestBody = Body("multipart/form-data", new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Required = new HashSet<string> { field },
                Properties = new Dictionary<string, IOpenApiSchema> { [field] = many ? new OpenApiSchema { Type = JsonSchemaType.Array, Items = file } : file },
            });
            return Task.CompletedTask;
        });

    /// <summary>A JSON body with named examples, so the docs page shows requests that work.</summary>
    public static RouteHandlerBuilder WithRequestExamples(this RouteHandlerBuilder builder, string one, string batch) =>
        builder.WithRequestExamples(("single", one), ("batch", batch));

    /// <summary>A JSON body with these named examples.</summary>
    public static RouteHandlerBuilder WithRequestExamples(this RouteHandlerBuilder builder, params (string Name, string Json)[] examples) =>
        builder.AddOpenApiOperationTransformer((operation, _, _) =>
        {
            var body = Body("application/json", new OpenApiSchema { Type = JsonSchemaType.Object });
            body.Content!["application/json"].Examples = examples.ToDictionary(e => e.Name, e => (IOpenApiExample)new OpenApiExample { Value = JsonNode.Parse(e.Json) });
            operation.RequestBody = body;
            return Task.CompletedTask;
        });

    private static OpenApiRequestBody Body(string contentType, OpenApiSchema schema) => new()
    {
        Required = true,
        Content = new Dictionary<string, OpenApiMediaType> { [contentType] = new() { Schema = schema } },
    };
}

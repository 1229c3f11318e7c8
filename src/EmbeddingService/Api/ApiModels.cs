using System.Text.Json.Serialization;

namespace EmbeddingService.Api;

public sealed record EmbeddingResponse(
    [property: JsonPropertyName("embedding")] float[] Embedding,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("device")] string Device);

public sealed record HealthResponse(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("model_loaded")] bool ModelLoaded,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("detail"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Detail = null);

public sealed record ServiceInfoResponse(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("model_loaded")] bool ModelLoaded,
    [property: JsonPropertyName("synthetic_weights")] bool? SyntheticWeights,
    [property: JsonPropertyName("synthetic_note"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SyntheticNote,
    [property: JsonPropertyName("model_variant")] string ModelVariant,
    [property: JsonPropertyName("embedding_dimension")] int EmbeddingDimension,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("endpoints")] IReadOnlyDictionary<string, string> Endpoints);

[JsonSerializable(typeof(EmbeddingResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ServiceInfoResponse))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;

using System.Text.Json.Serialization;

namespace EmbeddingService.Api;

public sealed record EmbeddingResponse(
    [property: JsonPropertyName("embedding")] float[] Embedding,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("device")] string Device);

public sealed record EmbeddingsResponse(
    [property: JsonPropertyName("embeddings")] float[][] Embeddings,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("device")] string Device);

/// <summary>The body of <c>POST /embed-text</c>: one of the two.</summary>
public sealed record TextRequest(
    [property: JsonPropertyName("text"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Text,
    [property: JsonPropertyName("texts"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Texts);

/// <summary>OpenAI's error shape, used on the OpenAI-compatible route.</summary>
public sealed record OpenAiErrorEnvelope([property: JsonPropertyName("error")] OpenAiError Error);

public sealed record OpenAiError(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

public sealed record HealthResponse(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("model_loaded")] bool ModelLoaded,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("detail"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Detail = null,
    [property: JsonPropertyName("database"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Database = null);

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
    [property: JsonPropertyName("endpoints")] IReadOnlyDictionary<string, string> Endpoints,
    [property: JsonPropertyName("ui")] string Ui);

[JsonSerializable(typeof(EmbeddingResponse))]
[JsonSerializable(typeof(EmbeddingsResponse))]
[JsonSerializable(typeof(TextRequest))]
[JsonSerializable(typeof(OpenAiErrorEnvelope))]
[JsonSerializable(typeof(ItemResponse))]
[JsonSerializable(typeof(ItemPage))]
[JsonSerializable(typeof(SearchResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ServiceInfoResponse))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;

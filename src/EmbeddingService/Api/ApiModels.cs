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
    [property: JsonPropertyName("ui")] string Ui,
    [property: JsonPropertyName("cpu")] CpuInfo Cpu);

/// <summary>The CPU a figure or a vector came from: its name, the instruction sets that matter, and its int8 kernel.</summary>
public sealed record CpuInfo(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("architecture")] string Architecture,
    [property: JsonPropertyName("instruction_sets")] IReadOnlyList<string> InstructionSets,
    [property: JsonPropertyName("int8_kernel")] string Int8Kernel,
    [property: JsonPropertyName("int8_pairs_saturate")] bool Int8PairsSaturate)
{
    public static CpuInfo From(Cpu.CpuFeatures cpu)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        return new(cpu.Name, cpu.Architecture, cpu.InstructionSets, Cpu.Int8KernelExtensions.Label(cpu.Int8Kernel), Cpu.Int8KernelExtensions.SaturatesOnPairs(cpu.Int8Kernel));
    }
}

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

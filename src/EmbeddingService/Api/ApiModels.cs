using System.Text.Json.Serialization;

namespace EmbeddingService.Api;

public sealed record EmbeddingResponse(
    float[] Embedding,
    string Model,
    string Device);

public sealed record EmbeddingsResponse(
    float[][] Embeddings,
    string Model,
    string Device);

/// <summary>The body of <c>POST /embed-text</c>: one of the two.</summary>
public sealed record TextRequest(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Text,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Texts);

/// <summary>OpenAI's error shape, used on the OpenAI-compatible route.</summary>
public sealed record OpenAiErrorEnvelope(OpenAiError Error)
{
    /// <summary>OpenAI's shape of an <see cref="Errors.ApiError"/>: its type by status class, its code by kind.</summary>
    public static OpenAiErrorEnvelope From(Errors.ApiError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return new(new OpenAiError(error.Message, error.Status >= 500 ? "server_error" : "invalid_request_error", error.Parameter, error.Kind switch
        {
            Errors.ErrorKind.TooLarge => "request_too_large",
            Errors.ErrorKind.TooSlow => "timeout",
            Errors.ErrorKind.NotFound => "not_found",
            >= Errors.ErrorKind.NotReady => "service_unavailable",
            _ => null,
        }));
    }
}

public sealed record OpenAiError(
    string Message,
    string Type,
    string? Param,
    string? Code);

public sealed record HealthResponse(
    string Status,
    bool ModelLoaded,
    string Device,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Detail = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Database = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? DatabaseReplica = null);

public sealed record ServiceInfoResponse(
    string Service,
    string Version,
    string Model,
    bool ModelLoaded,
    bool? SyntheticWeights,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? SyntheticNote,
    string ModelVariant,
    int? EmbeddingDimension,
    int? ImageSize,
    int? PatchSize,
    string Device,
    IReadOnlyDictionary<string, string> Endpoints,
    string Ui,
    CpuInfo Cpu);

/// <summary>The CPU a figure or a vector came from: its name, the instruction sets that matter, and its int8 kernel.</summary>
public sealed record CpuInfo(
    string Name,
    string Architecture,
    IReadOnlyList<string> InstructionSets,
    string Int8Kernel,
    bool Int8PairsSaturate)
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
[JsonSerializable(typeof(GroupedSearchResponse))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ServiceInfoResponse))]
internal sealed partial class ApiJsonContext : JsonSerializerContext;

namespace EmbeddingService.Model;

/// <summary>Which export of the towers to load: transformers.js publishes fp32, fp16 and int8-quantized files.</summary>
public enum ModelVariant
{
    Fp32,
    Fp16,
    Quantized,
}

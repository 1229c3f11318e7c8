using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Inference;

/// <summary>How ONNX Runtime runs the towers.</summary>
public sealed class InferenceOptions
{
    /// <summary>Threads one inference may use; 0 means one per core.</summary>
    [ConfigurationKeyName("INTRA_OP_THREADS")]
    [Range(0, 256)]
    public int IntraOpThreads { get; set; }

    /// <summary>
    /// Whether ONNX Runtime's threads spin between operators instead of sleeping: lower latency, but the spinning
    /// takes CPU from concurrent image decoding.
    /// </summary>
    [ConfigurationKeyName("INTRA_OP_SPINNING")]
    public bool AllowSpinning { get; set; }

    /// <summary>Whether MatMul weights are repacked at load (a second copy of most weights).</summary>
    [ConfigurationKeyName("ORT_PREPACKING")]
    public bool Prepacking { get; set; } = true;

    /// <summary>As CUDA sets it: a GPU is requested when this names one (not empty, not -1).</summary>
    [ConfigurationKeyName("CUDA_VISIBLE_DEVICES")]
    public string? CudaVisibleDevices { get; set; }

    public bool WantsCuda => CudaVisibleDevices is { Length: > 0 } devices
        && !devices.Trim().StartsWith('-')
        && !devices.Equals("none", StringComparison.OrdinalIgnoreCase)
        && !devices.Equals("NoDevFiles", StringComparison.OrdinalIgnoreCase);

    public int EffectiveIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Environment.ProcessorCount;
}

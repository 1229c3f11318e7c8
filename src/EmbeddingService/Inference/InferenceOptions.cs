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

    /// <summary>As CUDA sets it: a GPU is requested when this names one (not empty, not -1).</summary>
    [ConfigurationKeyName("CUDA_VISIBLE_DEVICES")]
    public string? CudaVisibleDevices { get; set; }

    public bool WantsCuda => CudaVisibleDevices is { Length: > 0 } devices
        && !devices.Trim().StartsWith('-')
        && !devices.Equals("none", StringComparison.OrdinalIgnoreCase)
        && !devices.Equals("NoDevFiles", StringComparison.OrdinalIgnoreCase);

    public int EffectiveIntraOpThreads => IntraOpThreads > 0 ? IntraOpThreads : Environment.ProcessorCount;
}

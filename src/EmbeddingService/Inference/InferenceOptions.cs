using System.ComponentModel.DataAnnotations;
using EmbeddingService.Model;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Inference;

/// <summary>How ONNX Runtime runs the towers.</summary>
public sealed class InferenceOptions
{
    /// <summary>Threads one inference run may use; 0 chooses by variant (<see cref="LayoutFor"/>).</summary>
    [ConfigurationKeyName("INTRA_OP_THREADS")]
    [Range(0, 256)]
    public int IntraOpThreads { get; set; }

    /// <summary>Inference runs of one tower at the same time; 0 chooses by variant (<see cref="LayoutFor"/>).</summary>
    [ConfigurationKeyName("INFERENCE_WORKERS")]
    [Range(0, 64)]
    public int InferenceWorkers { get; set; }

    /// <summary>
    /// Whether ONNX Runtime's threads spin between the operators of a run instead of sleeping (they stop when the run
    /// ends): a lone request's inference as fast as the raw runtime's, for a little of the CPU that concurrent decodes
    /// would use (docs/decisions.md).
    /// </summary>
    [ConfigurationKeyName("INTRA_OP_SPINNING")]
    public bool AllowSpinning { get; set; } = true;

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

    /// <summary>
    /// How a tower of a variant uses the cores when nothing is set: one batch at a time on every core, as fp32's
    /// large matrix products split well across threads; but int8 images run as many one-thread batches at once as
    /// there are cores, because their products are too small to split well (two threads were barely faster than
    /// one) and a second run keeps the other core busy while images decode (measured in docs/decisions.md).
    /// </summary>
    public InferenceLayout LayoutFor(ModelVariant variant, ModelTowers tower = ModelTowers.Vision)
    {
        var cores = Environment.ProcessorCount;
        var perRun = variant == ModelVariant.Quantized && tower == ModelTowers.Vision;
        return (InferenceWorkers, IntraOpThreads) switch
        {
            ( > 0, > 0) => new(InferenceWorkers, IntraOpThreads),
            ( > 0, _) => new(InferenceWorkers, Math.Max(1, cores / InferenceWorkers)),
            (_, > 0) => new(perRun ? Math.Max(1, cores / IntraOpThreads) : 1, IntraOpThreads),
            _ => perRun ? new(cores, 1) : new(1, cores),
        };
    }
}

/// <summary>Concurrent inference runs per tower, and the threads each run uses.</summary>
public sealed record InferenceLayout(int Workers, int IntraOpThreads);

using EmbeddingService.Model;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace EmbeddingService.Inference;

/// <summary>Creates ONNX Runtime sessions on the CPU, or on CUDA when it is asked for and this build offers it.</summary>
public sealed partial class OrtSessionFactory(InferenceOptions options, ILogger logger)
{
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>How runs of a variant's tower use the cores.</summary>
    public InferenceLayout LayoutFor(ModelVariant variant, ModelTowers tower) => options.LayoutFor(variant, tower);

    /// <summary>Opens one session; <c>Device</c> is "cuda" only when the CUDA provider really was attached.</summary>
    public (InferenceSession Session, string Device) Create(string modelPath, ModelVariant variant = ModelVariant.Fp32, ModelTowers tower = ModelTowers.Vision)
    {
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.LayoutFor(variant, tower).IntraOpThreads,
            InterOpNumThreads = 1,
        };
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", options.AllowSpinning ? "1" : "0");
        sessionOptions.AddSessionConfigEntry("session.disable_prepacking", options.Prepacking ? "0" : "1");

        var device = "cpu";
        if (options.WantsCuda)
        {
            device = TryAttachCuda(sessionOptions) ? "cuda" : "cpu";
        }

        return (new InferenceSession(modelPath, sessionOptions), device);
    }

    private bool TryAttachCuda(SessionOptions sessionOptions)
    {
        if (!OrtEnv.Instance().GetAvailableProviders().Contains(CudaProvider))
        {
            LogCudaUnavailable(logger, options.CudaVisibleDevices, "this ONNX Runtime build has no CUDA provider (build with Microsoft.ML.OnnxRuntime.Gpu.Linux)");
            return false;
        }

        try
        {
            // CUDA_VISIBLE_DEVICES renumbers the visible GPUs from 0, so the first one it names is device 0.
            sessionOptions.AppendExecutionProvider_CUDA(0);
            return true;
        }
        catch (OnnxRuntimeException e)
        {
            LogCudaUnavailable(logger, options.CudaVisibleDevices, e.Message);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "CUDA_VISIBLE_DEVICES={Devices} asks for a GPU, but {Reason}; running on the CPU")]
    private static partial void LogCudaUnavailable(ILogger logger, string? devices, string reason);
}

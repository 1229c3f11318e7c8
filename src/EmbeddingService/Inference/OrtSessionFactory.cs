using EmbeddingService.Cpu;
using EmbeddingService.Model;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace EmbeddingService.Inference;

/// <summary>
/// Creates ONNX Runtime sessions on the CPU, or on CUDA when it is asked for and this build offers it. A quantized
/// graph is read first: on a CPU whose u8 x s8 kernel adds product pairs in int16 (<paramref name="cpu"/>), weights
/// that can saturate it are served as the same values in u8 (<see cref="Onnx.Int8Saturation"/>), so no file, ours or
/// another quantizer's, gives wrong vectors on such a CPU.
/// </summary>
public sealed partial class OrtSessionFactory(InferenceOptions options, ILogger logger, CpuFeatures? cpu = null)
{
    private readonly CpuFeatures _cpu = cpu ?? CpuFeatures.Current;

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
        // Spinning ends with the run: between runs the cores belong to the image decoders.
        sessionOptions.AddSessionConfigEntry("session.force_spinning_stop", "1");
        sessionOptions.AddSessionConfigEntry("session.disable_prepacking", options.Prepacking ? "0" : "1");

        var device = "cpu";
        if (options.WantsCuda)
        {
            device = TryAttachCuda(sessionOptions) ? "cuda" : "cpu";
        }

        return (variant == ModelVariant.Quantized && device == "cpu" && ExactInt8Graph(modelPath) is { } exact
            ? new InferenceSession(exact, sessionOptions)
            : new InferenceSession(modelPath, sessionOptions), device);
    }

    /// <summary>The graph rewritten so it cannot saturate this CPU's int8 kernel, or null when the file is right as it is.</summary>
    private byte[]? ExactInt8Graph(string modelPath)
    {
        var kernel = _cpu.Int8Kernel;
        var (file, label) = (Path.GetFileName(modelPath), kernel.Label());
        if (!kernel.SaturatesOnPairs())
        {
            // Nothing to decide from the graph: reading a ~100 MB file at start would only produce a log line.
            LogInt8ExactHere(logger, file, label);
            return null;
        }

        Onnx.Proto.ModelProto model;
        try
        {
            using var stream = File.OpenRead(modelPath);
            model = Onnx.Proto.ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException)
        {
            return null; // ONNX Runtime says what is wrong with it.
        }

        var report = Onnx.Int8Saturation.Inspect(model);
        var found = report.Describe();
        if (!report.CanSaturate)
        {
            LogInt8Safe(logger, file, found, label);
            return null;
        }

        var rewritten = Onnx.Int8Saturation.MakeExact(model);
        LogInt8Repaired(logger, file, found, label, rewritten);
        return model.ToByteArray();
    }

    /// <summary>
    /// What the CUDA provider of Microsoft.ML.OnnxRuntime.Gpu.Linux 1.32.0 loads (the same as 1.31.0) (its DT_NEEDED entries, and cuDNN,
    /// which it opens at run time), driver first: checked before ONNX Runtime tries, so a machine without them gets one
    /// line naming the missing library instead of ONNX Runtime's error per session.
    /// </summary>
    private static readonly string[] CudaLibraries = ["libcuda.so.1", "libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"];

    /// <summary>Why CUDA cannot be used in this process (null: it can), found once.</summary>
    private static readonly Lazy<string?> CudaUnavailableBecause = new(() =>
    {
        if (!OrtEnv.Instance().GetAvailableProviders().Contains(CudaProvider))
        {
            return "this build has no CUDA provider (it is the CPU build: dotnet publish src/EmbeddingService -c Release -p:Gpu=true makes the GPU build)";
        }

        foreach (var library in CudaLibraries)
        {
            if (!System.Runtime.InteropServices.NativeLibrary.TryLoad(library, out var handle))
            {
                return $"{library} cannot be loaded ({(library == "libcuda.so.1" ? "no NVIDIA driver" : "the CUDA 13 / cuDNN 9 runtime is not installed")})";
            }

            System.Runtime.InteropServices.NativeLibrary.Free(handle);
        }

        return null;
    });

    private static int _cudaFailureLogged;

    private bool TryAttachCuda(SessionOptions sessionOptions)
    {
        var reason = CudaUnavailableBecause.Value;
        if (reason is null)
        {
            try
            {
                // CUDA_VISIBLE_DEVICES renumbers the visible GPUs from 0, so the first one it names is device 0.
                sessionOptions.AppendExecutionProvider_CUDA(0);
                return true;
            }
            catch (OnnxRuntimeException e)
            {
                reason = e.Message;
            }
        }

        if (Interlocked.Exchange(ref _cudaFailureLogged, 1) == 0)
        {
            LogCudaUnavailable(logger, options.CudaVisibleDevices, reason);
        }

        return false;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{File}: {Report}; no pair can saturate an int8 kernel (this CPU's: {Kernel})")]
    private static partial void LogInt8Safe(ILogger logger, string file, string report, string kernel);

    [LoggerMessage(Level = LogLevel.Information, Message = "{File}: this CPU's int8 kernel ({Kernel}) adds products in int32, so every int8 product is exact here; on AVX2 CPUs without VNNI the service checks the file's weights and serves any that could saturate through exact u8 kernels")]
    private static partial void LogInt8ExactHere(ILogger logger, string file, string kernel);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{File}: {Report}; this CPU's int8 kernel ({Kernel}) adds product pairs in int16 and would saturate on them, giving wrong vectors, so those {Weights} weights are served as the same values in u8 (exact, slower). 'EmbeddingService quantize --dir MODEL_DIR' writes a file that is exact at full speed on every CPU")]
    private static partial void LogInt8Repaired(ILogger logger, string file, string report, string kernel, int weights);

    [LoggerMessage(Level = LogLevel.Warning, Message = "CUDA_VISIBLE_DEVICES={Devices} asks for a GPU, but {Reason}; running on the CPU")]
    private static partial void LogCudaUnavailable(ILogger logger, string? devices, string reason);
}

using EmbeddingService.Model;
using Google.Protobuf;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Onnx;
using Onnx.Proto;

namespace EmbeddingService.Quantization;

/// <summary>
/// <c>quantize [--dir DIR] [--variant quantized|fp16] [--operator contrib|standard] [--scheme ...] [--max-error X]
/// [--probe-images DIR] [--force]</c>: writes <c>onnx/*_quantized.onnx</c> (dynamic int8, see <see cref="DynamicInt8Quantizer"/>)
/// or <c>onnx/*_fp16.onnx</c> (see <see cref="Float16Converter"/>) beside a model's fp32 towers, so <c>MODEL_VARIANT</c> can
/// serve them. Before anything is moved into place, the variant is checked on this CPU against fp32 (<see cref="VariantCheck"/>).
/// </summary>
public static class QuantizeCommand
{
    public const string Name = "quantize";
    public const double DefaultMaxError = 1e-3;

    public static IReadOnlyDictionary<string, Int8WeightScheme> Schemes { get; } = new Dictionary<string, Int8WeightScheme>(StringComparer.Ordinal)
    {
        ["full"] = Int8WeightScheme.Full,
        ["pair-bounded"] = Int8WeightScheme.PairBounded,
        ["reduced"] = Int8WeightScheme.Reduced,
        ["u8"] = Int8WeightScheme.ZeroPoint128,
    };

    public sealed record Settings(string Directory, ModelVariant Variant, Int8Operator Operator, Int8WeightScheme Scheme, double MaxError, string? ProbeImages, bool Force);

    /// <summary>Runs <c>quantize</c> with these arguments through the service's command line (as the tests and the benchmark do).</summary>
    public static int Run(string[] args) =>
        CommandLine.ServiceCommands.InvokeAsync([Name, .. args], _ => throw new InvalidOperationException("not a server")).GetAwaiter().GetResult();

    public static int Run(Settings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);

        var files = new ModelFiles(settings.Directory, ModelVariant.Fp32);
        var target = new ModelFiles(settings.Directory, settings.Variant);
        var variantName = settings.Variant == ModelVariant.Fp16 ? VariantRewriter.Float16 : VariantRewriter.Quantized;
        var staging = Path.Combine(settings.Directory, $".quantize-{variantName}-{Environment.ProcessId}");
        var staged = new ModelFiles(staging, settings.Variant);
        // Checked before anything is made, so a wrong --dir leaves no staging folder (nor a model directory) behind.
        if (new[] { files.VisionModel, files.TextModel }.FirstOrDefault(f => !File.Exists(f)) is { } missing)
        {
            Console.Error.WriteLine($"{missing} does not exist: quantize reads a model directory's fp32 towers.");
            return 1;
        }

        try
        {
            Directory.CreateDirectory(Path.Combine(staging, "onnx"));
            foreach (var file in Directory.EnumerateFiles(settings.Directory))
            {
                File.Copy(file, Path.Combine(staging, Path.GetFileName(file)));
            }

            foreach (var (source, destination) in new[] { (files.VisionModel, staged.VisionModel), (files.TextModel, staged.TextModel) })
            {
                if (Rewrite(source, destination, variantName, settings) is { } error)
                {
                    Console.Error.WriteLine($"{source}: {error}");
                    return 1;
                }
            }

            if (Check(settings, files, staged) is { } refusal)
            {
                Console.Error.WriteLine(refusal);
                return 1;
            }

            File.Move(staged.VisionModel, target.VisionModel, overwrite: true);
            File.Move(staged.TextModel, target.TextModel, overwrite: true);
            Console.WriteLine($"{target.VisionModel}, {target.TextModel}: written");
            return 0;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <returns>Null when the variant is within the bound (or --force), else why it is refused.</returns>
    private static string? Check(Settings settings, ModelFiles fp32Files, ModelFiles variantFiles)
    {
        using var logging = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var loader = new ModelLoader(new Inference.OrtSessionFactory(new Inference.InferenceOptions(), logging.CreateLogger(Name)));
        IReadOnlyList<TowerDistance> distances;
        try
        {
            using var fp32 = loader.Load(fp32Files);
            using var variant = loader.Load(variantFiles);
            distances = VariantCheck.Measure(fp32, variant, settings.ProbeImages);
        }
        catch (ModelDirectoryException e)
        {
            return $"the variant this version wrote does not load, so nothing was written: {e.Message}";
        }

        Console.WriteLine($"checked on this CPU: {Cpu.CpuFeatures.Current.Describe()}");
        Console.WriteLine($"probe set: {(settings.ProbeImages is { } folder ? $"the images in {folder}" : $"{VariantCheck.GeneratedImages} generated images")} and {VariantCheck.TextCount} texts");
        foreach (var distance in distances) Console.WriteLine($"  {distance}");
        var worst = distances.Count == 0 ? 0 : distances.Max(d => d.Max);
        if (worst <= settings.MaxError)
        {
            return null;
        }

        var beyond = FormattableString.Invariant($"max 1 - cos {worst:E2} is beyond the bound {settings.MaxError:E1} (--max-error)");
        if (settings.Force)
        {
            Console.Error.WriteLine($"WARNING: {beyond}; --force moves the variant into place anyway: its vectors are further from fp32's than the bound.");
            return null;
        }

        return $"{beyond}: nothing was moved into place. Trained weights may need another bound (--max-error), another scheme (--scheme), or --force.";
    }
    /// <returns>Null when the variant was written, else why not.</returns>
    private static string? Rewrite(string source, string destination, string variant, Settings settings)
    {
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(source);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            return $"not an ONNX model ({e.Message})";
        }

        RewriteReport report;
        try
        {
            report = VariantRewriter.Rewrite(model, variant, settings.Operator, settings.Scheme);
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }

        using (var stream = File.Create(destination))
        {
            model.WriteTo(stream);
        }

        Console.WriteLine($"{destination}: {VariantRewriter.Describe(variant, report)}");
        return null;
    }
}

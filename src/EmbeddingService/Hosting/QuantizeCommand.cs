using EmbeddingService.Model;
using Google.Protobuf;
using Microsoft.Extensions.Configuration;
using Onnx;
using Onnx.Proto;

namespace EmbeddingService.Hosting;

/// <summary>
/// <c>quantize [--dir DIR] [--variant quantized]</c>: writes <c>onnx/*_quantized.onnx</c> beside a model's fp32
/// towers (dynamic int8, see <see cref="DynamicInt8Quantizer"/>), so <c>MODEL_VARIANT=quantized</c> can serve them.
/// </summary>
public static class QuantizeCommand
{
    public const string Name = "quantize";
    private const string Usage = "usage: EmbeddingService quantize [--dir MODEL_DIR] [--variant quantized]";

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var options = new ModelOptions();
        configuration.Bind(options);
        var directory = options.ModelDir;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--dir" when i + 1 < args.Length:
                    directory = args[++i];
                    break;
                case "--variant" when i + 1 < args.Length && args[i + 1] == "quantized":
                    i++;
                    break;
                case "--variant" when i + 1 < args.Length && args[i + 1] == "fp16":
                    Console.Error.WriteLine("The fp16 variant is not written by this version yet; --variant quantized is.");
                    return 2;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        var files = new ModelFiles(directory, ModelVariant.Fp32);
        var target = new ModelFiles(directory, ModelVariant.Quantized);
        foreach (var (source, destination) in new[] { (files.VisionModel, target.VisionModel), (files.TextModel, target.TextModel) })
        {
            if (!File.Exists(source))
            {
                Console.Error.WriteLine($"{source} does not exist: quantize reads a model directory's fp32 towers.");
                return 1;
            }

            ModelProto model;
            using (var stream = File.OpenRead(source))
            {
                model = ModelProto.Parser.ParseFrom(stream);
            }

            QuantizationReport report;
            try
            {
                report = DynamicInt8Quantizer.Quantize(model);
            }
            catch (InvalidDataException e)
            {
                Console.Error.WriteLine($"{source}: {e.Message}");
                return 1;
            }

            // Written beside, then moved into place: a reader never sees half a model.
            var temporary = destination + ".tmp";
            using (var stream = File.Create(temporary))
            {
                model.WriteTo(stream);
            }

            File.Move(temporary, destination, overwrite: true);
            Console.WriteLine(System.FormattableString.Invariant(
                $"{destination}: {report.MatMuls} MatMuls to int8, weights {report.FloatBytes / 1e6:F1} MB -> {report.Int8Bytes / 1e6:F1} MB"));
        }

        return 0;
    }
}

using System.Globalization;
using SyntheticModel;

// Writes a CLIP model directory with the true architecture and seeded random weights.
string preset = "vit-b32", output = string.Empty;
string? bpe = null;
ulong seed = 1;
var quantized = false;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--preset": preset = Next(); break;
        case "--seed": seed = ulong.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--out": output = Next(); break;
        case "--bpe": bpe = Next(); break;
        case "--variants":
            var variants = Next().Split(',', StringSplitOptions.TrimEntries);
            if (variants.Except(["fp32", "quantized"]).FirstOrDefault() is { } unknown)
            {
                Console.Error.WriteLine($"variant '{unknown}' is not written by this version (fp32, quantized)");
                return 2;
            }

            quantized = variants.Contains("quantized");
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            Console.Error.WriteLine("usage: SyntheticModel --preset vit-b32|tiny --seed N --out DIR [--bpe bpe_simple_vocab_16e6.txt.gz] [--variants fp32,quantized]");
            return 2;
    }
}

if (output.Length == 0)
{
    Console.Error.WriteLine("usage: SyntheticModel --preset vit-b32|tiny --seed N --out DIR [--bpe bpe_simple_vocab_16e6.txt.gz]");
    return 2;
}

var model = ModelDirectoryWriter.Write(ClipArchitecture.FromPreset(preset), seed, output, bpe, quantized);
long Size(string name) => new FileInfo(Path.Combine(output, "onnx", name)).Length;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"wrote {output} ({preset}, seed {seed}) in {model.Elapsed.TotalSeconds:F1} s: " +
    $"vision {model.VisionParameters:N0} parameters, {Size("vision_model.onnx") / 1e6:F1} MB; " +
    $"text {model.TextParameters:N0} parameters, {Size("text_model.onnx") / 1e6:F1} MB"));
return 0;

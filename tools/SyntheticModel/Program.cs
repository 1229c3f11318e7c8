using System.Globalization;
using SyntheticModel;

// Writes a CLIP model directory with the true architecture and seeded random weights.
string preset = "vit-b32", output = string.Empty;
string? bpe = null;
ulong seed = 1;
IReadOnlyCollection<string> variants = [];
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
            var named = Next().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (named.Except(["fp32", .. Onnx.VariantRewriter.Variants]).FirstOrDefault() is { } unknown)
            {
                Console.Error.WriteLine($"variant '{unknown}' is not written by this version (fp32, {string.Join(", ", Onnx.VariantRewriter.Variants)})");
                return 2;
            }

            variants = [.. named.Where(v => v != "fp32")];
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            Console.Error.WriteLine("usage: SyntheticModel --preset vit-b32|vit-b16|vit-l14|vit-l14-336|tiny|tiny-b16|tiny-l14-336 --seed N --out DIR [--bpe bpe_simple_vocab_16e6.txt.gz] [--variants fp32,quantized,fp16]");
            return 2;
    }
}

if (output.Length == 0)
{
    Console.Error.WriteLine("usage: SyntheticModel --preset vit-b32|vit-b16|vit-l14|vit-l14-336|tiny|tiny-b16|tiny-l14-336 --seed N --out DIR [--bpe bpe_simple_vocab_16e6.txt.gz] [--variants fp32,quantized,fp16]");
    return 2;
}

ClipArchitecture architecture;
try
{
    architecture = ClipArchitecture.FromPreset(preset);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message.Split(" (Parameter")[0]);
    return 2;
}

var model = ModelDirectoryWriter.Write(architecture, seed, output, bpe, variants);
long Size(string name) => new FileInfo(Path.Combine(output, "onnx", name)).Length;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"wrote {output} ({preset}, seed {seed}) in {model.Elapsed.TotalSeconds:F1} s: " +
    $"vision {model.VisionParameters:N0} parameters, {Size("vision_model.onnx") / 1e6:F1} MB; " +
    $"text {model.TextParameters:N0} parameters, {Size("text_model.onnx") / 1e6:F1} MB"));
return 0;

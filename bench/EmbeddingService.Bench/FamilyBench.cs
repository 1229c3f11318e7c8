using System.Diagnostics;
using System.Net.Http.Headers;
using EmbeddingService.Model;
using SyntheticModel;

namespace EmbeddingService.Bench;

/// <summary>
/// The CLIP family side by side (<c>--family</c>): each preset generated at full size (the true architecture and cost,
/// random weights), its int8 towers written by the quantize command, then fp32 and int8 served one after the other on
/// the same machine: images/s at 1 and 8 clients, resident memory, start-up, and int8's 1 - cos against fp32 on the
/// shared images. The larger models run longer, so that every figure rests on tens of answers.
/// </summary>
internal static class FamilyBench
{
    public static async Task RunAsync(BenchOptions options, byte[] image, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var bpe = Path.Combine(options.SharedDirectory, "clip", "bpe_simple_vocab_16e6.txt.gz");
        foreach (var preset in options.Presets ?? ["vit-b32", "vit-b16", "vit-l14", "vit-l14-336"])
        {
            var arch = ClipArchitecture.FromPreset(preset);
            var directory = Path.Combine(options.RepositoryRoot, ".models", $"synthetic-{preset}");
            if (!File.Exists(Path.Combine(directory, "onnx", "vision_model.onnx")) || !File.Exists(Path.Combine(directory, "onnx", "text_model.onnx")))
            {
                var clock = Stopwatch.StartNew();
                ModelDirectoryWriter.Write(arch, 1, directory, bpe);
                report.Add($"generated {preset}", Report.F(clock.Elapsed.TotalSeconds, 1) + " s");
            }

            VariantBench.EnsureVariant(directory, Onnx.VariantRewriter.Quantized, report);
            var card = ModelCard.Read(new ModelFiles(directory, ModelVariant.Fp32));
            // ~40x ViT-B/32's work for L/14@336: a window long enough for tens of answers at 8 clients.
            var scale = Math.Max(1, arch.VisionWidth * arch.VisionLayers * arch.PatchesPerSide * arch.PatchesPerSide / (768.0 * 12 * 49) / 4);
            var seconds = options.Seconds * scale;
            var fp32 = await MeasureAsync(options, directory, ModelVariant.Fp32, image, seconds, settings);
            var int8 = await MeasureAsync(options, directory, ModelVariant.Quantized, image, seconds, settings);
            var worst = fp32.Vectors.Zip(int8.Vectors, VariantBench.Distance).Max();
            report.Add($"{card.Name} ({card.Dimension}-d, {card.ImageSize} px, {arch.PatchesPerSide}x{arch.PatchesPerSide} patches)",
                $"{Report.F(fp32.One)} / {Report.F(fp32.Eight)} img/s", Report.F(fp32.OneP50), "", "",
                $"fp32 at 1 / 8 clients; RSS {Report.F(fp32.Rss, 0)} MiB (peak {Report.F(fp32.Peak, 0)}); start {Report.F(fp32.Start, 1)} s; " +
                $"int8 {Report.F(int8.One)} / {Report.F(int8.Eight)} img/s (8 clients x{Report.F(int8.Eight / fp32.Eight, 2)}), RSS {Report.F(int8.Rss, 0)} MiB, " +
                $"1 - cos vs fp32 max {worst:E1} over {fp32.Vectors.Count} images; measured {Report.F(seconds, 0)} s per load");
        }
    }

    private sealed record Measured(double One, double OneP50, double Eight, double Rss, double Peak, double Start, List<float[]> Vectors);

    private static async Task<Measured> MeasureAsync(BenchOptions options, string directory, ModelVariant variant, byte[] image, double seconds,
        IReadOnlyDictionary<string, string> settings)
    {
        var environment = new Dictionary<string, string>(settings) { ["MODEL_VARIANT"] = variant.ToString().ToLowerInvariant() };
        var clock = Stopwatch.StartNew();
        await using var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, directory, environment);
        var start = clock.Elapsed.TotalSeconds;
        var vectors = await EmbedSharedImagesAsync(options, service.Address);
        var one = await HttpLoad.RunAsync(service.Address, image, 1, seconds);
        await HttpLoad.RunAsync(service.Address, image, 8, seconds / 4);
        var eight = await HttpLoad.RunAsync(service.Address, image, 8, seconds);
        var (rss, peak) = service.ResidentMiB();
        Console.Error.WriteLine($"  {directory} {variant}: {one.ImagesPerSecond:F2} / {eight.ImagesPerSecond:F2} img/s, {one.FailureSummary} / {eight.FailureSummary}");
        return new Measured(one.ImagesPerSecond, one.Percentile(0.5), eight.ImagesPerSecond, rss, peak, start, vectors);
    }

    private static async Task<List<float[]>> EmbedSharedImagesAsync(BenchOptions options, Uri service)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        var vectors = new List<float[]>();
        foreach (var path in Directory.GetFiles(Path.Combine(options.SharedDirectory, "images")).Where(f => !f.Contains("truncated", StringComparison.Ordinal)).Order())
        {
            using var form = new MultipartFormDataContent();
            var file = new ByteArrayContent(await File.ReadAllBytesAsync(path));
            file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(file, "file", Path.GetFileName(path));
            vectors.Add(await VariantBench.EmbeddingAsync(await http.PostAsync(new Uri(service, "/embed-image"), form)));
        }

        return vectors;
    }
}

using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmbeddingService.Model;
using Onnx;

namespace EmbeddingService.Bench;

/// <summary>
/// fp32, int8 and fp16 side by side in one run: every configuration is a service of its own, started one after the
/// other (start-up time), then measured in interleaved rounds so the machine's drift falls on all of them alike.
/// Fidelity is each variant's embeddings of the shared images and texts against fp32's, through HTTP.
/// </summary>
internal static class VariantBench
{
    private static readonly string[] OtherSchemes = ["u8", "pair-bounded", "reduced"];

    private sealed record Config(string Name, ModelVariant Variant, params (string Key, string Value)[] Settings);

    private sealed record Measured(List<double> OneClientP50 = null!, List<double> OneClient = null!, List<double> EightClients = null!, List<double> Texts = null!)
    {
        public static Measured Create() => new([], [], [], []);
    }

    public static async Task RunAsync(BenchOptions options, string modelDirectory, byte[] image, IReadOnlyDictionary<string, string> settings, Report report)
    {
        foreach (var variant in VariantRewriter.Variants)
        {
            EnsureVariant(modelDirectory, variant, report);
        }

        // The other int8 weight schemes, each in a directory of its own beside the model (its fp32 towers linked).
        var schemes = OtherSchemes.ToDictionary(s => s, s => SchemeDirectory(modelDirectory, s, report));

        Config[] configs =
        [
            new("fp32", ModelVariant.Fp32),
            new("fp32, INFERENCE_WORKERS=2 INTRA_OP_THREADS=1", ModelVariant.Fp32, ("INFERENCE_WORKERS", "2"), ("INTRA_OP_THREADS", "1")),
            new("quantized (int8)", ModelVariant.Quantized),
            new("quantized, INFERENCE_WORKERS=1 (one 2-thread run at a time)", ModelVariant.Quantized, ("INFERENCE_WORKERS", "1"), ("INTRA_OP_THREADS", "2")),
            new("quantized, MAX_BATCH_SIZE=8", ModelVariant.Quantized, ("MAX_BATCH_SIZE", "8")),
            new("quantized, scheme u8 (how AVX2 CPUs without VNNI are served a full-range file)", ModelVariant.Quantized, ("MODEL_DIR", schemes["u8"])),
            new("quantized, scheme pair-bounded", ModelVariant.Quantized, ("MODEL_DIR", schemes["pair-bounded"])),
            new("quantized, scheme reduced (7-bit)", ModelVariant.Quantized, ("MODEL_DIR", schemes["reduced"])),
            new("fp16", ModelVariant.Fp16),
        ];
        var services = new List<(Config Config, ServiceUnderTest Service, double StartSeconds)>();
        // A first start reads every file into the page cache, so the start-up times compare loading, not the disk.
        await (await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, settings)).DisposeAsync();
        try
        {
            foreach (var config in configs)
            {
                var environment = new Dictionary<string, string>(settings) { ["MODEL_VARIANT"] = config.Variant.ToString().ToLowerInvariant() };
                foreach (var (key, value) in config.Settings) environment[key] = value;
                var clock = Stopwatch.StartNew();
                var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, environment);
                services.Add((config, service, clock.Elapsed.TotalSeconds));
            }

            var fidelity = await FidelityAsync(options, services.Select(s => (s.Config, s.Service)).ToList());
            var measured = configs.ToDictionary(c => c, _ => Measured.Create());
            for (var round = 0; round < 3; round++)
            {
                foreach (var (config, service, _) in services)
                {
                    var one = await HttpLoad.RunAsync(service.Address, image, 1, options.Seconds / 2);
                    await HttpLoad.RunAsync(service.Address, image, 8, 1);
                    var eight = await HttpLoad.RunAsync(service.Address, image, 8, options.Seconds);
                    var texts = await HttpLoad.RunTextAsync(service.Address, TextBench.Query, 8, options.Seconds / 2);
                    measured[config].OneClientP50.Add(one.Percentile(0.5));
                    measured[config].OneClient.Add(one.ImagesPerSecond);
                    measured[config].EightClients.Add(eight.ImagesPerSecond);
                    measured[config].Texts.Add(texts.ImagesPerSecond);
                }
            }

            var baseline = measured[configs[0]];
            foreach (var (config, service, startSeconds) in services)
            {
                var m = measured[config];
                var (rss, peak) = service.ResidentMiB();
                var (imageMax, imageMean, textMax, textMean) = fidelity[config];
                // Ratios per round, then the median: the rounds are where fp32 and the variant ran minutes apart at most.
                var speedup = Median(m.EightClients.Zip(baseline.EightClients, (a, b) => a / b));
                var latency = Median(m.OneClientP50.Zip(baseline.OneClientP50, (a, b) => a / b));
                report.Add($"variant {config.Name}", $"{Report.F(Median(m.OneClient))} / {Report.F(Median(m.EightClients))} img/s; {Report.F(Median(m.Texts), 0)} texts/s",
                    Report.F(Median(m.OneClientP50)), "", "",
                    $"8 clients x{Report.F(speedup, 2)}, 1-client p50 x{Report.F(latency, 2)} of fp32; RSS {Report.F(rss, 0)} MiB (peak {Report.F(peak, 0)}); " +
                    $"start {Report.F(startSeconds, 1)} s; 1 - cos vs fp32: images max {imageMax:E1} mean {imageMean:E1}, texts max {textMax:E1} mean {textMean:E1}");
            }
        }
        finally
        {
            foreach (var (_, service, _) in services) await service.DisposeAsync();
        }
    }

    /// <summary>Writes a variant the model directory lacks, with the service's own quantize command.</summary>
    internal static void EnsureVariant(string modelDirectory, string variant, Report report)
    {
        if (File.Exists(Path.Combine(modelDirectory, "onnx", $"vision_model_{variant}.onnx")) && File.Exists(Path.Combine(modelDirectory, "onnx", $"text_model_{variant}.onnx")))
        {
            return;
        }

        var clock = Stopwatch.StartNew();
        if (Quantization.QuantizeCommand.Run(["--dir", modelDirectory, "--variant", variant]) != 0)
        {
            throw new InvalidOperationException($"quantize --variant {variant} failed on {modelDirectory}");
        }

        report.Add($"wrote the {variant} towers", Report.F(clock.Elapsed.TotalSeconds, 1) + " s");
    }

    /// <summary>A directory whose quantized towers use <paramref name="scheme"/>, written once with the quantize command.</summary>
    private static string SchemeDirectory(string modelDirectory, string scheme, Report report)
    {
        var directory = Path.Combine(modelDirectory, "schemes", scheme);
        if (File.Exists(Path.Combine(directory, "onnx", "vision_model_quantized.onnx")) && File.Exists(Path.Combine(directory, "onnx", "text_model_quantized.onnx")))
        {
            return directory;
        }

        Directory.CreateDirectory(Path.Combine(directory, "onnx"));
        foreach (var file in Directory.EnumerateFiles(modelDirectory)) File.Copy(file, Path.Combine(directory, Path.GetFileName(file)), overwrite: true);
        foreach (var tower in new[] { "vision_model.onnx", "text_model.onnx" })
        {
            var link = Path.Combine(directory, "onnx", tower);
            if (!File.Exists(link)) File.CreateSymbolicLink(link, Path.Combine(modelDirectory, "onnx", tower));
        }

        var clock = Stopwatch.StartNew();
        if (Quantization.QuantizeCommand.Run(["--dir", directory, "--scheme", scheme, "--force"]) != 0)
        {
            throw new InvalidOperationException($"quantize --scheme {scheme} failed on {directory}");
        }

        report.Add($"wrote the int8 towers with scheme {scheme}", Report.F(clock.Elapsed.TotalSeconds, 1) + " s");
        return directory;
    }

    private static async Task<Dictionary<Config, (double ImageMax, double ImageMean, double TextMax, double TextMean)>> FidelityAsync(
        BenchOptions options, List<(Config Config, ServiceUnderTest Service)> services)
    {
        var images = Directory.GetFiles(Path.Combine(options.SharedDirectory, "images")).Where(f => !f.Contains("truncated", StringComparison.Ordinal)).Order().ToList();
        var texts = File.ReadAllLines(Path.Combine(options.SharedDirectory, "reference", "texts.txt"));
        var vectors = new Dictionary<Config, (List<float[]> Images, List<float[]> Texts)>();
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        foreach (var (config, service) in services)
        {
            var imageVectors = new List<float[]>();
            foreach (var path in images)
            {
                using var form = new MultipartFormDataContent();
                var file = new ByteArrayContent(await File.ReadAllBytesAsync(path));
                file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                form.Add(file, "file", Path.GetFileName(path));
                imageVectors.Add(await EmbeddingAsync(await http.PostAsync(new Uri(service.Address, "/embed-image"), form)));
            }

            var textVectors = new List<float[]>();
            foreach (var text in texts)
            {
                textVectors.Add(await EmbeddingAsync(await http.PostAsJsonAsync(new Uri(service.Address, "/embed-text"), new Dictionary<string, string> { ["text"] = text })));
            }

            vectors[config] = (imageVectors, textVectors);
        }

        var reference = vectors[services[0].Config];
        return vectors.ToDictionary(v => v.Key, v =>
        {
            var imageDistances = v.Value.Images.Zip(reference.Images, Distance).ToList();
            var textDistances = v.Value.Texts.Zip(reference.Texts, Distance).ToList();
            return (imageDistances.Max(), imageDistances.Average(), textDistances.Max(), textDistances.Average());
        });
    }

    internal static async Task<float[]> EmbeddingAsync(HttpResponseMessage response)
    {
        using (response)
        {
            response.EnsureSuccessStatusCode();
            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return [.. document.RootElement.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle())];
        }
    }

    /// <summary>1 - cos, in double, so a difference of 1e-7 is not rounding.</summary>
    internal static double Distance(float[] a, float[] b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }

        return 1 - (dot / Math.Sqrt(aa * bb));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}

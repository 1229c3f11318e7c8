using System.Diagnostics;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace EmbeddingService.Bench;

/// <summary>ONNX Runtime alone: the vision tower on ready tensors, no HTTP, no decoding.</summary>
internal static class RawInference
{
    public static double Run(string modelDirectory, int threads, double seconds, Report report, out double batchOneMs)
    {
        // The same session settings as the service under test, from the same environment variables.
        var settings = new InferenceOptions
        {
            IntraOpThreads = threads,
            AllowSpinning = Environment.GetEnvironmentVariable("INTRA_OP_SPINNING") is "true" or "1",
            Prepacking = Environment.GetEnvironmentVariable("ORT_PREPACKING") is not ("false" or "0"),
        };
        var loader = new ModelLoader(new OrtSessionFactory(settings, NullLogger.Instance));
        using var model = loader.Load(new ModelFiles(modelDirectory, ModelVariant.Fp32));
        var best = 0.0;
        batchOneMs = 0;
        foreach (var batch in new[] { 1, 8, 16 })
        {
            var inputs = new float[batch * model.Vision.ItemLength];
            var random = new Random(batch);
            for (var i = 0; i < inputs.Length; i++) inputs[i] = (float)((random.NextDouble() * 4) - 2);
            var outputs = new float[batch * 512];
            model.Vision.Embed(inputs, batch, outputs);
            model.Vision.Embed(inputs, batch, outputs);
            var runs = new List<double>();
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds || runs.Count < 3)
            {
                var start = clock.Elapsed.TotalMilliseconds;
                model.Vision.Embed(inputs, batch, outputs);
                runs.Add(clock.Elapsed.TotalMilliseconds - start);
            }

            var imagesPerSecond = batch * runs.Count / clock.Elapsed.TotalSeconds;
            best = Math.Max(best, imagesPerSecond);
            runs.Sort();
            if (batch == 1) batchOneMs = runs[runs.Count / 2];
            report.Add($"raw ONNX Runtime, batch {batch} ({threads} threads)", Report.F(imagesPerSecond), Report.F(runs[runs.Count / 2]), "", "",
                $"ms per run of {batch}");
        }

        return best;
    }
}

using System.Diagnostics;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace EmbeddingService.Bench;

/// <summary>ONNX Runtime alone: the vision tower on ready tensors, no HTTP, no decoding, same session settings as the service.</summary>
internal sealed class RawInference : IDisposable
{
    private readonly ClipModel _model;

    public RawInference(string modelDirectory, int threads)
    {
        var settings = new ConfigurationBuilder().AddEnvironmentVariables().Build().Get<InferenceOptions>() ?? new InferenceOptions();
        settings.IntraOpThreads = threads;
        _model = new ModelLoader(new OrtSessionFactory(settings, NullLogger.Instance)).Load(new ModelFiles(modelDirectory, ModelVariant.Fp32));
    }

    /// <summary>Runs batches back to back for about <paramref name="seconds"/>: images/s and the median run time.</summary>
    public (double ImagesPerSecond, double MedianRunMs) Measure(int batch, double seconds)
    {
        var inputs = new float[batch * _model.Vision.ItemLength];
        var random = new Random(batch);
        for (var i = 0; i < inputs.Length; i++) inputs[i] = (float)((random.NextDouble() * 4) - 2);
        var outputs = new float[batch * 512];
        _model.Vision.Embed(inputs, batch, outputs);
        var runs = new List<double>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds || runs.Count < 3)
        {
            var start = clock.Elapsed.TotalMilliseconds;
            _model.Vision.Embed(inputs, batch, outputs);
            runs.Add(clock.Elapsed.TotalMilliseconds - start);
        }

        var imagesPerSecond = batch * runs.Count / clock.Elapsed.TotalSeconds;
        runs.Sort();
        return (imagesPerSecond, runs[runs.Count / 2]);
    }

    public void Dispose() => _model.Dispose();
}

using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Telemetry;
using Microsoft.Extensions.Logging;

namespace EmbeddingService.ModelLifecycle;

/// <summary>A loaded model with what serves it: one batching pipeline per loaded tower and the image preprocessor.</summary>
public sealed class ServingModel : IAsyncDisposable
{
    private readonly BatchingPipeline<float>? _vision;
    private readonly BatchingPipeline<long>? _text;

    public ServingModel(ClipModel model, BatchingOptions options, ILoggerFactory loggers, ServiceMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loggers);
        Model = model;
        ImagePreprocessor = new ClipImagePreprocessor(model.Preprocessor);
        if (model.Towers.HasFlag(ModelTowers.Vision))
        {
            _vision = new BatchingPipeline<float>(model.Vision, static (tower, input, count, output) => tower.Embed(input, count, output),
                options.ForImages(model.Files.Variant), loggers.CreateLogger("EmbeddingService.Inference.VisionPipeline"),
                metrics is null ? null : (items, run) => metrics.InferenceRun("vision", items, run));
        }

        if (model.Towers.HasFlag(ModelTowers.Text))
        {
            _text = new BatchingPipeline<long>(model.Text, static (tower, input, count, output) => tower.Embed(input, count, output),
                options, loggers.CreateLogger("EmbeddingService.Inference.TextPipeline"),
                metrics is null ? null : (items, run) => metrics.InferenceRun("text", items, run));
        }
    }

    public ClipModel Model { get; }

    public ClipImagePreprocessor ImagePreprocessor { get; }

    /// <exception cref="TowerNotLoadedException">MODEL_TOWERS left it out.</exception>
    public BatchingPipeline<float> Vision => _vision ?? throw TowerNotLoadedException.For(ModelTowers.Vision);

    /// <exception cref="TowerNotLoadedException">MODEL_TOWERS left it out.</exception>
    public BatchingPipeline<long> Text => _text ?? throw TowerNotLoadedException.For(ModelTowers.Text);

    public async ValueTask DisposeAsync()
    {
        if (_vision is not null) await _vision.DisposeAsync();
        if (_text is not null) await _text.DisposeAsync();
        Model.Dispose();
    }
}

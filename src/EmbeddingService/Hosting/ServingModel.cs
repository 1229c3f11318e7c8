using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.Extensions.Logging;

namespace EmbeddingService.Hosting;

/// <summary>A loaded model with what serves it: one batching pipeline per tower and the image preprocessor.</summary>
public sealed class ServingModel : IAsyncDisposable
{
    public ServingModel(ClipModel model, BatchingOptions options, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loggers);
        Model = model;
        ImagePreprocessor = new ClipImagePreprocessor(model.Preprocessor);
        Vision = new BatchingPipeline<float>(model.Vision, static (tower, input, count, output) => tower.Embed(input, count, output),
            options, loggers.CreateLogger("EmbeddingService.Inference.VisionPipeline"));
        Text = new BatchingPipeline<long>(model.Text, static (tower, input, count, output) => tower.Embed(input, count, output),
            options, loggers.CreateLogger("EmbeddingService.Inference.TextPipeline"));
    }

    public ClipModel Model { get; }

    public ClipImagePreprocessor ImagePreprocessor { get; }

    public BatchingPipeline<float> Vision { get; }

    public BatchingPipeline<long> Text { get; }

    public async ValueTask DisposeAsync()
    {
        await Vision.DisposeAsync();
        await Text.DisposeAsync();
        Model.Dispose();
    }
}

using EmbeddingService.Inference;

namespace EmbeddingService.Model;

/// <summary>A loaded, validated model directory: both towers plus the settings that go with them.</summary>
public sealed class ClipModel(ModelFiles files, ModelConfig config, PreprocessorSettings preprocessor, EmbeddingTower vision, EmbeddingTower text, string device) : IDisposable
{
    public const string DisplayName = "CLIP-ViT-B/32";
    public const int ContextLength = 77;

    public ModelFiles Files { get; } = files;

    public ModelConfig Config { get; } = config;

    public PreprocessorSettings Preprocessor { get; } = preprocessor;

    public EmbeddingTower Vision { get; } = vision;

    public EmbeddingTower Text { get; } = text;

    public string Device { get; } = device;

    public void Dispose()
    {
        Vision.Dispose();
        Text.Dispose();
    }
}

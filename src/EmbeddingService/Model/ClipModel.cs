using EmbeddingService.Inference;
using EmbeddingService.Tokenization;

namespace EmbeddingService.Model;

/// <summary>A loaded, validated model directory: the towers it was asked for plus the settings that go with them.</summary>
public sealed class ClipModel(ModelFiles files, ModelConfig config, PreprocessorSettings preprocessor, EmbeddingTower? vision, EmbeddingTower? text,
    ClipTokenizer? tokenizer, string device) : IDisposable
{
    public const string DisplayName = "CLIP-ViT-B/32";
    public const int ContextLength = 77;

    /// <summary>Embedding width of ViT-B/32; what the API, the store and the checks of vectors from elsewhere expect.</summary>
    public const int Dimensions = 512;

    public ModelFiles Files { get; } = files;

    public ModelConfig Config { get; } = config;

    public PreprocessorSettings Preprocessor { get; } = preprocessor;

    public ModelTowers Towers => (vision is null ? ModelTowers.None : ModelTowers.Vision) | (text is null ? ModelTowers.None : ModelTowers.Text);

    /// <exception cref="TowerNotLoadedException">MODEL_TOWERS left it out.</exception>
    public EmbeddingTower Vision => vision ?? throw TowerNotLoadedException.For(ModelTowers.Vision);

    /// <exception cref="TowerNotLoadedException">MODEL_TOWERS left it out.</exception>
    public EmbeddingTower Text => text ?? throw TowerNotLoadedException.For(ModelTowers.Text);

    /// <exception cref="TowerNotLoadedException">MODEL_TOWERS left the text tower out.</exception>
    public ClipTokenizer Tokenizer => tokenizer ?? throw TowerNotLoadedException.For(ModelTowers.Text);

    public string Device { get; } = device;

    public void Dispose()
    {
        vision?.Dispose();
        text?.Dispose();
    }
}

using EmbeddingService.Inference;
using EmbeddingService.Tokenization;

namespace EmbeddingService.Model;

/// <summary>A loaded, validated model directory: the towers it was asked for plus the settings that go with them.</summary>
public sealed class ClipModel(ModelFiles files, ModelConfig config, ModelCard card, PreprocessorSettings preprocessor, EmbeddingTower? vision, EmbeddingTower? text,
    ClipTokenizer? tokenizer, string device) : IDisposable
{
    /// <summary>Every OpenAI CLIP text tower reads 77 tokens.</summary>
    public const int ContextLength = 77;

    public ModelFiles Files { get; } = files;

    public ModelConfig Config { get; } = config;

    /// <summary>Which model this is: its name, embedding dimension and input size (what the API, the store and the checks of vectors from elsewhere follow).</summary>
    public ModelCard Card { get; } = card;

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

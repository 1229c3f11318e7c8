namespace EmbeddingService.Model;

/// <summary>The file layout of <c>Xenova/clip-vit-base-patch32</c>: what a model directory must hold.</summary>
public sealed record ModelFiles(string Root, ModelVariant Variant, ModelTowers Towers = ModelTowers.Both)
{
    public const string Config = "config.json";
    public const string PreprocessorConfig = "preprocessor_config.json";
    public const string TokenizerConfig = "tokenizer_config.json";
    public const string Vocabulary = "vocab.json";
    public const string Merges = "merges.txt";

    public string VisionModelRelative => $"onnx/vision_model{Suffix(Variant)}.onnx";

    public string TextModelRelative => $"onnx/text_model{Suffix(Variant)}.onnx";

    public string VisionModel => PathOf(VisionModelRelative);

    public string TextModel => PathOf(TextModelRelative);

    /// <summary>Every file the variant and towers need, small ones first, as forward-slash paths relative to the root.</summary>
    public IReadOnlyList<string> RelativePaths =>
    [
        Config, PreprocessorConfig, TokenizerConfig, Vocabulary, Merges,
        .. Towers.HasFlag(ModelTowers.Text) ? [TextModelRelative] : Array.Empty<string>(),
        .. Towers.HasFlag(ModelTowers.Vision) ? [VisionModelRelative] : Array.Empty<string>(),
    ];

    public string PathOf(string relativePath) => Path.Combine(Root, relativePath.Replace('/', Path.DirectorySeparatorChar));

    public IReadOnlyList<string> Missing() => [.. RelativePaths.Where(p => !File.Exists(PathOf(p)))];

    public static string Suffix(ModelVariant variant) => variant switch
    {
        ModelVariant.Fp32 => string.Empty,
        ModelVariant.Fp16 => "_fp16",
        ModelVariant.Quantized => "_quantized",
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };
}

namespace SyntheticModel;

/// <summary>The shape of one CLIP model; <see cref="VitB32"/> is OpenAI's ViT-B/32.</summary>
public sealed record ClipArchitecture(
    string Name,
    int VisionWidth,
    int VisionLayers,
    int VisionHeads,
    int TextWidth,
    int TextLayers,
    int TextHeads)
{
    public const int ImageSize = 224;
    public const int PatchSize = 32;
    public const int EmbeddingDimension = 512;
    public const int ContextLength = 77;
    public const int VocabularySize = 49408;
    public const int StartOfText = 49406;
    public const int EndOfText = 49407;

    public static ClipArchitecture VitB32 { get; } = new("vit-b32", 768, 12, 12, 512, 12, 8);

    public static ClipArchitecture Tiny { get; } = new("tiny", 64, 2, 2, 64, 2, 2);

    public static int PatchesPerSide => ImageSize / PatchSize;

    public static ClipArchitecture FromPreset(string preset) => preset switch
    {
        "vit-b32" => VitB32,
        "tiny" => Tiny,
        _ => throw new ArgumentException($"Unknown preset '{preset}': use vit-b32 or tiny.", nameof(preset)),
    };
}

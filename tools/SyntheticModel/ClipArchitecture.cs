namespace SyntheticModel;

/// <summary>
/// The shape of one CLIP model: OpenAI's ViT-B/32 (<see cref="VitB32"/>), ViT-B/16, ViT-L/14 and ViT-L/14@336, and
/// tiny ones of each geometry (64 wide, 2 layers) for tests.
/// </summary>
/// <param name="HubName">The Hugging Face name a real export's config carries in <c>_name_or_path</c>; null for the tiny ones.</param>
public sealed record ClipArchitecture(
    string Name,
    int VisionWidth,
    int VisionLayers,
    int VisionHeads,
    int TextWidth,
    int TextLayers,
    int TextHeads,
    int PatchSize = 32,
    int ImageSize = 224,
    int EmbeddingDimension = 512,
    string? HubName = null)
{
    public const int ContextLength = 77;
    public const int VocabularySize = 49408;
    public const int StartOfText = 49406;
    public const int EndOfText = 49407;

    public static ClipArchitecture VitB32 { get; } = new("vit-b32", 768, 12, 12, 512, 12, 8, HubName: "openai/clip-vit-base-patch32");

    public static ClipArchitecture VitB16 { get; } = new("vit-b16", 768, 12, 12, 512, 12, 8, PatchSize: 16, HubName: "openai/clip-vit-base-patch16");

    public static ClipArchitecture VitL14 { get; } = new("vit-l14", 1024, 24, 16, 768, 12, 12, PatchSize: 14, EmbeddingDimension: 768,
        HubName: "openai/clip-vit-large-patch14");

    public static ClipArchitecture VitL14At336 { get; } = VitL14 with { Name = "vit-l14-336", ImageSize = 336, HubName = "openai/clip-vit-large-patch14-336" };

    public static ClipArchitecture Tiny { get; } = new("tiny", 64, 2, 2, 64, 2, 2);

    public static ClipArchitecture TinyB16 { get; } = Tiny with { Name = "tiny-b16", PatchSize = 16 };

    public static ClipArchitecture TinyL14At336 { get; } = Tiny with { Name = "tiny-l14-336", PatchSize = 14, ImageSize = 336, EmbeddingDimension = 768 };

    public static IReadOnlyList<ClipArchitecture> Presets { get; } = [VitB32, VitB16, VitL14, VitL14At336, Tiny, TinyB16, TinyL14At336];

    public int PatchesPerSide => ImageSize / PatchSize;

    public static ClipArchitecture FromPreset(string preset) => Presets.FirstOrDefault(p => p.Name == preset)
        ?? throw new ArgumentException($"Unknown preset '{preset}': use one of {string.Join(", ", Presets.Select(p => p.Name))}.", nameof(preset));
}

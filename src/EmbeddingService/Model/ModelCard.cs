using System.Globalization;
using System.Text.RegularExpressions;

namespace EmbeddingService.Model;

/// <summary>
/// Which CLIP model a directory holds, from its own config files: the name every answer, <c>GET /</c>, the metrics and
/// the store carry, the embedding dimension, the input size and the patch grid. Read before the (slow) ONNX sessions
/// are opened, so the store can be checked meanwhile.
/// </summary>
public sealed partial record ModelCard(string Name, int Dimension, int ImageSize, int PatchSize)
{
    /// <summary>The replaced service's model: the default, and the name its stores and clients know.</summary>
    public const string DefaultName = "CLIP-ViT-B/32";

    public const int DefaultDimension = 512;

    /// <summary>Patches along a side of the input (7 for B/32, 24 for L/14@336); 0 when the config does not give the patch.</summary>
    public int PatchesPerSide => PatchSize > 0 ? ImageSize / PatchSize : 0;

    /// <summary>Reads <c>config.json</c> and <c>preprocessor_config.json</c> of a directory; the ONNX files are not needed.</summary>
    /// <exception cref="ModelDirectoryException">A file is missing, unreadable or the two disagree.</exception>
    public static ModelCard Read(ModelFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
        foreach (var file in new[] { ModelFiles.Config, ModelFiles.PreprocessorConfig })
        {
            if (!File.Exists(files.PathOf(file))) throw new ModelDirectoryException($"{files.Root}: missing {file}.");
        }

        return From(ModelConfig.Read(files.PathOf(ModelFiles.Config)), PreprocessorSettings.Read(files.PathOf(ModelFiles.PreprocessorConfig)),
            files.PathOf(ModelFiles.Config));
    }

    /// <summary>
    /// Which model is meant before it is loaded, for what needs no model to run (import, the store while a model
    /// downloads): the model directory's card when its config files are there, else the one MODEL_REPO names when it
    /// is an OpenAI CLIP ViT (ViT-B/32 by default: the replaced service's vectors), whose dimension its size gives.
    /// </summary>
    /// <exception cref="ModelDirectoryException">Neither says which model it is.</exception>
    public static ModelCard Expected(ModelOptions options) => TryExpected(options) ?? throw new ModelDirectoryException(
        $"{options.Files.Root}: no config.json there, and MODEL_REPO '{options.Repository}' is not an OpenAI CLIP ViT's name: which model the vectors " +
        "are from (its name and dimension) is not known. Point MODEL_DIR at the model, or run download-model first.");

    /// <inheritdoc cref="Expected"/>
    /// <returns>Null when neither says which model it is.</returns>
    public static ModelCard? TryExpected(ModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var files = options.Files;
        return File.Exists(files.PathOf(ModelFiles.Config)) && File.Exists(files.PathOf(ModelFiles.PreprocessorConfig))
            ? Read(files)
            : OpenAiCard(options.Repository);
    }

    /// <exception cref="ModelDirectoryException">The config lacks the embedding dimension, or its input size is not the preprocessor's.</exception>
    public static ModelCard From(ModelConfig config, PreprocessorSettings preprocessor, string configPath)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(preprocessor);
        if (config.ProjectionDimension is not { } dimension || dimension is < 1 or > MaxDimension)
        {
            throw new ModelDirectoryException($"{configPath}: projection_dim (the embedding dimension) must be a number from 1 to {MaxDimension}" +
                (config.ProjectionDimension is { } d ? $", not {d}." : "; it is missing."));
        }

        if (preprocessor.CropHeight != preprocessor.CropWidth)
        {
            throw new ModelDirectoryException($"{configPath}: the preprocessor crops {preprocessor.CropHeight}x{preprocessor.CropWidth}; CLIP's input is square.");
        }

        var imageSize = preprocessor.CropHeight;
        if (config.ImageSize is { } declared && declared != imageSize)
        {
            throw new ModelDirectoryException(
                $"{configPath}: vision_config.image_size is {declared}, but preprocessor_config.json crops to {imageSize}: the two files are of different models.");
        }

        // Without vision_config.patch_size the grid is unknown (0) and the name says the input size alone.
        var patch = config.PatchSize is > 0 and var p && imageSize % p == 0 ? p : 0;
        return new ModelCard(NameOf(config.NameOrPath, dimension, patch, imageSize), dimension, imageSize, patch);
    }

    /// <summary>Widest embedding accepted: pgvector's <c>halfvec</c> and its HNSW index take up to 4,000; CLIP's widest has 1,280.</summary>
    public const int MaxDimension = 4_000;

    /// <summary>
    /// <c>openai/clip-vit-large-patch14-336</c> (or <c>Xenova/...</c>) is <c>CLIP-ViT-L/14@336</c>; a name that is not an
    /// OpenAI CLIP ViT's, or none, is named from the geometry: the width (512 B, 768 L, 1024 H), the patch, and the input
    /// size when it is not 224. The default export is <see cref="DefaultName"/> either way.
    /// </summary>
    public static string NameOf(string? nameOrPath, int dimension, int patch, int imageSize)
    {
        if (OpenAiName(nameOrPath) is { } name) return name;
        var width = dimension switch { 512 => "B", 768 => "L", 1024 => "H", _ => dimension.ToString(CultureInfo.InvariantCulture) + "d" };
        var grid = patch > 0 ? "/" + patch.ToString(CultureInfo.InvariantCulture) : string.Empty;
        return $"CLIP-ViT-{width}{grid}{(imageSize == 224 ? string.Empty : "@" + imageSize.ToString(CultureInfo.InvariantCulture))}";
    }

    /// <summary>The model name of an OpenAI CLIP ViT's Hugging Face name or repository (<c>Xenova/clip-vit-base-patch16</c>), else null.</summary>
    public static string? OpenAiName(string? nameOrPath) => OpenAiCard(nameOrPath)?.Name;

    /// <summary>What an OpenAI CLIP ViT's name says: its size gives the dimension (base 512, large 768, huge 1024), its patch and input.</summary>
    private static ModelCard? OpenAiCard(string? nameOrPath)
    {
        if (nameOrPath is not { Length: > 0 } || HubName().Match(nameOrPath.TrimEnd('/')) is not { Success: true } match) return null;
        var size = match.Groups["size"].Value.ToUpperInvariant();
        var patch = match.Groups["patch"].Value;
        var input = match.Groups["input"];
        return new ModelCard($"CLIP-ViT-{size[0]}/{patch}{(input.Success ? "@" + input.Value : string.Empty)}",
            size switch { "BASE" => 512, "LARGE" => 768, _ => 1024 },
            input.Success ? int.Parse(input.Value, CultureInfo.InvariantCulture) : 224,
            int.Parse(patch, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"(?:^|/)clip-vit-(?<size>base|large|huge)-patch(?<patch>\d+)(?:-(?<input>\d+))?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex HubName();
}

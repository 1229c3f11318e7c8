using System.Text.Json;

namespace EmbeddingService.Model;

/// <summary>
/// What <c>config.json</c> says: the embedding width (<c>projection_dim</c>), the vision tower's patch and input size
/// (<c>vision_config</c>), the model it was exported from (<c>_name_or_path</c>, as Hugging Face writes it); and
/// <see cref="SyntheticNote"/> for generated random-weight models. Absent values are null, never assumed.
/// </summary>
public sealed record ModelConfig(int? ProjectionDimension, int? PatchSize, int? ImageSize, string? NameOrPath, string? SyntheticNote)
{
    public bool IsSynthetic => SyntheticNote is not null;

    public static ModelConfig Read(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            var vision = root.TryGetProperty("vision_config", out var v) && v.ValueKind == JsonValueKind.Object ? v : default;
            return new ModelConfig(
                Int(root, "projection_dim"),
                Int(vision, "patch_size"),
                Int(vision, "image_size"),
                root.TryGetProperty("_name_or_path", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString() : null,
                root.TryGetProperty("_synthetic", out var note) ? note.ToString() : null);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or FormatException)
        {
            throw new ModelDirectoryException($"{path}: not a readable model config ({e.Message}).", e);
        }
    }

    private static int? Int(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value.GetInt32()
            : null;
}

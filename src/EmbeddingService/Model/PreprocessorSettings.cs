using System.Text.Json;

namespace EmbeddingService.Model;

/// <summary>What <c>preprocessor_config.json</c> says about resizing, cropping and normalizing images.</summary>
public sealed record PreprocessorSettings(int ShortestEdge, int CropHeight, int CropWidth, float RescaleFactor, float[] Mean, float[] Std)
{
    /// <summary>Pillow's number for BICUBIC, the only filter the Pillow-exact resizer implements.</summary>
    public const int PillowBicubic = 3;

    public static PreprocessorSettings Read(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new ModelDirectoryException($"{path}: not readable JSON ({e.Message}).", e);
        }

        using (document)
        {
            try
            {
                return Parse(path, document.RootElement);
            }
            catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new ModelDirectoryException($"{path}: unexpected structure ({e.Message}).", e);
            }
        }
    }

    private static PreprocessorSettings Parse(string path, JsonElement root)
    {
        {
            if (root.TryGetProperty("resample", out var resample) && resample.GetInt32() != PillowBicubic)
            {
                throw Invalid(path, $"resample is {resample.GetInt32()}, but only {PillowBicubic} (bicubic, as CLIP uses) is supported");
            }

            foreach (var flag in new[] { "do_resize", "do_center_crop", "do_normalize" })
            {
                if (root.TryGetProperty(flag, out var value) && value.ValueKind == JsonValueKind.False)
                {
                    throw Invalid(path, $"{flag} is false, but CLIP preprocessing always does it");
                }
            }

            if (!root.TryGetProperty("size", out var size))
            {
                throw Invalid(path, "size is missing");
            }

            var shortest = size.ValueKind == JsonValueKind.Number ? size.GetInt32()
                : size.TryGetProperty("shortest_edge", out var edge) ? edge.GetInt32()
                : throw Invalid(path, "size has no shortest_edge");
            var (cropHeight, cropWidth) = !root.TryGetProperty("crop_size", out var crop) ? (shortest, shortest)
                : crop.ValueKind == JsonValueKind.Number ? (crop.GetInt32(), crop.GetInt32())
                : (crop.GetProperty("height").GetInt32(), crop.GetProperty("width").GetInt32());
            var rescale = root.TryGetProperty("rescale_factor", out var factor) ? factor.GetSingle() : 1f / 255;
            var mean = ReadTriple(root, "image_mean") ?? throw Invalid(path, "image_mean must be 3 numbers");
            var std = ReadTriple(root, "image_std") ?? throw Invalid(path, "image_std must be 3 numbers");
            if (std.Any(s => s <= 0))
            {
                throw Invalid(path, "image_std must be positive");
            }

            if (shortest < cropHeight || shortest < cropWidth || cropHeight <= 0 || cropWidth <= 0)
            {
                throw Invalid(path, $"crop_size {cropHeight}x{cropWidth} does not fit in shortest_edge {shortest}");
            }

            return new PreprocessorSettings(shortest, cropHeight, cropWidth, rescale, mean, std);
        }
    }

    private static ModelDirectoryException Invalid(string path, string what) => new($"{path}: {what}.");

    private static float[]? ReadTriple(JsonElement root, string name) =>
        root.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array && array.GetArrayLength() == 3
            ? [.. array.EnumerateArray().Select(v => v.GetSingle())]
            : null;
}

using System.Text.Json;

namespace EmbeddingService.Model;

/// <summary>What <c>config.json</c> says; <see cref="SyntheticNote"/> is set for generated random-weight models.</summary>
public sealed record ModelConfig(int ProjectionDimension, string? SyntheticNote)
{
    public bool IsSynthetic => SyntheticNote is not null;

    public static ModelConfig Read(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            var dimension = root.TryGetProperty("projection_dim", out var projection) ? projection.GetInt32() : 512;
            var synthetic = root.TryGetProperty("_synthetic", out var note) ? note.ToString() : null;
            return new ModelConfig(dimension, synthetic);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or FormatException)
        {
            throw new ModelDirectoryException($"{path}: not a readable model config ({e.Message}).", e);
        }
    }
}

using EmbeddingService.Errors;

namespace EmbeddingService.Model;

/// <summary>Which towers a deployment loads (<c>MODEL_TOWERS</c>): an image-only indexer needs no text tower.</summary>
[Flags]
public enum ModelTowers
{
    None = 0,
    Vision = 1,
    Text = 2,
    Both = Vision | Text,
}

public static class ModelTowersParser
{
    /// <summary>Parses "vision,text", "vision" or "text" (any order, case, spaces).</summary>
    public static ModelTowers Parse(string? value)
    {
        var towers = ModelTowers.None;
        foreach (var name in (value ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            towers |= name.ToUpperInvariant() switch
            {
                "VISION" or "IMAGE" => ModelTowers.Vision,
                "TEXT" => ModelTowers.Text,
                _ => throw new FormatException($"MODEL_TOWERS: '{name}' is not a tower; use vision, text or vision,text."),
            };
        }

        return towers == ModelTowers.None ? throw new FormatException("MODEL_TOWERS names no tower; use vision, text or vision,text.") : towers;
    }
}

/// <summary>An endpoint needs a tower this deployment did not load.</summary>
public sealed class TowerNotLoadedException : ApiException
{
    public TowerNotLoadedException()
        : this("A model tower this route needs is not loaded (MODEL_TOWERS).")
    {
    }

    public TowerNotLoadedException(string message)
        : base(new ApiError(ErrorKind.NotConfigured, message))
    {
    }

    public TowerNotLoadedException(string message, Exception innerException)
        : base(new ApiError(ErrorKind.NotConfigured, message), innerException)
    {
    }

    public static TowerNotLoadedException For(ModelTowers tower) => new(
        $"The {(tower == ModelTowers.Vision ? "vision" : "text")} tower is not loaded in this deployment (MODEL_TOWERS); " +
        $"it serves {(tower == ModelTowers.Vision ? "text" : "image")} embeddings only.");
}

using System.Text.Json;

namespace EmbeddingService.Api;

/// <summary>Strings from a client's JSON. JSON's syntax allows invalid UTF-8 and unpaired \ud800 escapes, which are
/// not text: <see cref="JsonElement.GetString"/> throws on them (the fuzz suite found it on three routes).</summary>
internal static class JsonText
{
    /// <summary>The string, or null when the element is not valid Unicode text.</summary>
    public static string? TryGet(JsonElement element)
    {
        try
        {
            return element.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>PostgreSQL's jsonb refuses the NUL character (\u0000) that JSON allows; metadata and filters must not hold it.</summary>
    public static bool HasNul(string json) => json.Contains("\\u0000", StringComparison.OrdinalIgnoreCase);

    public static string NotText(string name) => $"\"{name}\" is not valid Unicode text (invalid UTF-8, or an unpaired surrogate escape).";
}

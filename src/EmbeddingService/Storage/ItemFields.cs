namespace EmbeddingService.Storage;

/// <summary>
/// What an item's product and text may be, checked the same way by the API, the indexer and import: a product names a
/// group of items as an id does; a text (title, brand, SKU) is words for full-text search.
/// </summary>
public static class ItemFields
{
    /// <summary>A text's length at most: a product page's title and description, far past what a search reads.</summary>
    public const int MaxTextChars = 10_000;

    /// <summary>Why <paramref name="product"/> cannot name a product (as an id: <see cref="NameProblem"/>), or null.</summary>
    public static string? ProductProblem(string product) => NameProblem(product, "the product");

    /// <summary>Why a name (an item's id, a product) is not one: 1 to 256 characters, none a control character; or null.</summary>
    /// <param name="what">How the sentence names it: "the id".</param>
    public static string? NameProblem(string? name, string what) =>
        string.IsNullOrEmpty(name) || name.Length > 256 || name.Any(char.IsControl) ? $"{what} must have 1 to 256 characters and no control characters" : null;

    /// <summary>Why <paramref name="text"/> cannot be stored as an item's text (blank, too long, or holding NUL, which PostgreSQL refuses), or null.</summary>
    public static string? TextProblem(string text) =>
        string.IsNullOrWhiteSpace(text) ? "the text is blank (leave it out instead)"
        : text.Length > MaxTextChars ? $"the text has {text.Length:N0} characters; at most {MaxTextChars:N0} are stored"
        : text.Contains('\0', StringComparison.Ordinal) ? "the text holds the NUL character, which PostgreSQL refuses"
        : null;
}

using System.Security.Cryptography;
using System.Text.Json;
using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;

namespace EmbeddingService.Api;

/// <summary>
/// The body of <c>PUT /items/{id}</c>: multipart <c>file</c> (an image, so the model must be ready) with optional
/// <c>metadata</c>, <c>product</c> and <c>text</c> fields, or JSON <c>{"vector": [...], "metadata": {...}, "product":
/// "...", "text": "..."}</c>, a vector computed elsewhere, which needs no model and keeps working while it loads.
/// </summary>
public sealed class ItemBody : Intake
{
    public const string MetadataField = "metadata";
    public const string ProductField = "product";
    public const string TextField = "text";
    private const string MetadataExample = "{\"brand\": \"acme\", \"category\": \"bags\"}";

    /// <summary>The numbers written in full (~14 bytes each) beside metadata of up to a multipart field's 64 KiB.</summary>
    private static int VectorBodyBytes(int dimension) => (dimension * 32) + (3 * UploadReceiver.MaxTextFieldBytes);
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField, TextFields: [MetadataField, ProductField, TextField]);
    private ReceivedForm? _form;
    private float[]? _vector;
    private string _metadata = "{}";
    private string? _product;
    private string? _text;

    public static ValueTask<ItemBody> BindAsync(HttpContext context) => TakeAsync<ItemBody>(context, async (self, c) =>
    {
        // Not now comes first: without the database, the body is not worth reading.
        var dimension = c.RequestServices.GetRequiredService<StorageState>().Require().Identity.Dimension;
        if (c.Request.HasJsonContentType())
        {
            await ReadJsonAsync(c, VectorBodyBytes(dimension), root => self.ReadVector(root, dimension));
            return;
        }

        self.Held = self._form = await ReceiveImagesAsync(c, Form);
        if (self._form.Fields.TryGetValue(MetadataField, out var metadata)) self._metadata = JsonInput.ObjectText(metadata, MetadataField, MetadataExample);
        if (self._form.Fields.TryGetValue(ProductField, out var product)) self._product = Product(product);
        if (self._form.Fields.TryGetValue(TextField, out var text)) self._text = Text(text);
    });

    private static string Product(string product) =>
        ItemFields.ProductProblem(product) is { } problem ? throw JsonInput.Invalid($"{char.ToUpperInvariant(problem[0])}{problem[1..]}.", ProductField) : product;

    private static string Text(string text) =>
        ItemFields.TextProblem(text) is { } problem ? throw JsonInput.Invalid($"{char.ToUpperInvariant(problem[0])}{problem[1..]}.", TextField) : text;

    /// <summary>The item to store: the given vector, or the image embedded, with its SHA-256 and thumbnail.</summary>
    /// <param name="model">The store's model, whose vectors these are.</param>
    public async Task<NewItem> ToItemAsync(string id, string model, ImageEmbedder images, bool thumbnails, string variant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (_vector is not null) return new NewItem(id, _vector, model, variant, null, _metadata, null, null, _product, _text);
        var content = _form!.Files[0].Content;
        var embedding = await images.EmbedAsync(content, thumbnails, cancellationToken);
        return new NewItem(id, embedding.Vector, model, variant, Convert.ToHexStringLower(SHA256.HashData(content.Span)), _metadata,
            embedding.Thumbnail, embedding.Thumbnail is null ? null : ThumbnailMaker.ContentType, _product, _text, embedding.Pixels);
    }

    private void ReadVector(JsonElement root, int dimension)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("vector", out var vector))
        {
            throw JsonInput.Invalid($"The JSON body needs \"vector\" ({dimension} numbers) and may have \"metadata\" (an object), \"product\" and \"text\" (strings).");
        }

        _vector = JsonInput.Vector(vector, "vector", dimension);
        if (root.TryGetProperty(MetadataField, out var metadata)) _metadata = JsonInput.ObjectText(metadata.GetRawText(), MetadataField, MetadataExample);
        if (root.TryGetProperty(ProductField, out var product) && product.ValueKind != JsonValueKind.Null) _product = Product(JsonInput.String(product, ProductField, ProductField));
        if (root.TryGetProperty(TextField, out var text) && text.ValueKind != JsonValueKind.Null) _text = Text(JsonInput.String(text, TextField, TextField));
    }
}

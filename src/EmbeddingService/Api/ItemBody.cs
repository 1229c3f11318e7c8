using System.Security.Cryptography;
using System.Text.Json;
using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;

namespace EmbeddingService.Api;

/// <summary>
/// The body of <c>PUT /items/{id}</c>: multipart <c>file</c> (an image, so the model must be ready) with an optional
/// <c>metadata</c> field, or JSON <c>{"vector": [...], "metadata": {...}}</c>, a vector computed elsewhere, which needs
/// no model and keeps working while it loads.
/// </summary>
public sealed class ItemBody : Intake
{
    public const string MetadataField = "metadata";
    private const string MetadataExample = "{\"brand\": \"acme\", \"category\": \"bags\"}";

    /// <summary>The numbers written in full (~14 bytes each) beside metadata of up to a multipart field's 64 KiB.</summary>
    private static int VectorBodyBytes(int dimension) => (dimension * 32) + UploadReceiver.MaxTextFieldBytes;
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField, TextFields: [MetadataField]);
    private ReceivedForm? _form;
    private float[]? _vector;
    private string _metadata = "{}";

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
    });

    /// <summary>The item to store: the given vector, or the image embedded, with its SHA-256 and thumbnail.</summary>
    /// <param name="model">The store's model, whose vectors these are.</param>
    public async Task<NewItem> ToItemAsync(string id, string model, ImageEmbedder images, bool thumbnails, string variant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (_vector is not null) return new NewItem(id, _vector, model, variant, null, _metadata, null, null);
        var content = _form!.Files[0].Content;
        var embedding = await images.EmbedAsync(content, thumbnails, cancellationToken);
        return new NewItem(id, embedding.Vector, model, variant, Convert.ToHexStringLower(SHA256.HashData(content.Span)), _metadata,
            embedding.Thumbnail, embedding.Thumbnail is null ? null : ThumbnailMaker.ContentType);
    }

    private void ReadVector(JsonElement root, int dimension)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("vector", out var vector))
        {
            throw JsonInput.Invalid($"The JSON body needs \"vector\" ({dimension} numbers) and may have \"metadata\" (an object).");
        }

        _vector = JsonInput.Vector(vector, "vector", dimension);
        if (root.TryGetProperty(MetadataField, out var metadata)) _metadata = JsonInput.ObjectText(metadata.GetRawText(), MetadataField, MetadataExample);
    }
}

using System.Text.Json;
using EmbeddingService.Classification;
using EmbeddingService.Inference;
using EmbeddingService.Limits;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary><c>POST /classify</c>: zero-shot tags, a subject's labels ranked by CLIP (softmax of LOGIT_SCALE x cosine).</summary>
public static class ClassifyEndpoints
{
    public static IEndpointRouteBuilder MapClassify(this IEndpointRouteBuilder app)
    {
        app.MapPost("/classify", ClassifyAsync).WithName("Classify").WithTags(ApiDocs.Embeddings).WithApiErrors()
            .WithSummary("Rank labels for a photo, an item or a vector (zero-shot)")
            .WithDescription("One subject: multipart 'file' (with form fields 'labels' and 'templates' as JSON arrays), or JSON {\"item_id\"}, {\"image\": " +
                "\"data:image/...;base64,...\"} or {\"vector\": [...]}; \"labels\": 2-1,000 strings; \"templates\": optional strings holding {} (default: a " +
                "product-photo prompt set). Each label's embedding is normalize(mean over templates of normalize(text embedding of the template filled with " +
                "the label)). -> {\"labels\": [{\"label\", \"score\", \"similarity\"}]}, best first: similarity the cosine, score softmax over the labels of " +
                "LOGIT_SCALE (100) x similarity.")
            .WithRequestExamples(
                ("item", """{"item_id": "sku-123-front", "labels": ["handbag", "backpack", "wallet", "shoe"]}"""),
                ("templates", """{"item_id": "sku-123-front", "labels": ["red", "black", "brown"], "templates": ["a photo of a {} bag.", "a {} leather product."]}"""))
            .Produces<ClassifyResponse>().AnswersProblems(400, 404, 408, 413, 422, 503)
            .DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> ClassifyAsync(ClassifyBody body, StorageState storage, ImageEmbedder images, LabelEmbeddings labels,
        IOptions<ClassificationOptions> options, CancellationToken cancellationToken)
    {
        var embedded = labels.EmbedAsync(body.Labels, body.Templates, cancellationToken);
        var subject = await body.SubjectAsync(storage, images, cancellationToken);
        var vectors = await embedded;
        return TypedResults.Ok(new ClassifyResponse(ZeroShot.Rank(subject, body.Labels, vectors, options.Value.LogitScale)));
    }
}

public sealed record ClassifyResponse(IReadOnlyList<LabelScore> Labels);

/// <summary>A subject (a photo, a stored item, a vector) with its labels and templates.</summary>
public sealed class ClassifyBody : Intake
{
    private const int MaxLabels = 1_000, MaxTemplates = 64, MaxLabelChars = 1_000;
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField, TextFields: ["labels", "templates"]);
    private static readonly string[] Subjects = ["item_id", "image", "vector"];

    private ReadOnlyMemory<byte>? _image;
    private string? _itemId;
    private float[]? _vector;

    public IReadOnlyList<string> Labels { get; private set; } = [];

    public IReadOnlyList<string> Templates { get; private set; } = ZeroShot.ProductTemplates;

    public static ValueTask<ClassifyBody> BindAsync(HttpContext context) => TakeAsync<ClassifyBody>(context, async (self, c) =>
    {
        // The labels need the text tower whatever the subject.
        c.RequestServices.GetRequiredService<TextEmbedder>().EnsureAccepting();
        var dimension = c.RequestServices.GetRequiredService<ModelState>().Serving!.Model.Card.Dimension;
        if (c.Request.HasJsonContentType())
        {
            var maxImageBytes = c.RequestServices.GetRequiredService<IOptions<UploadOptions>>().Value.MaxUploadBytes;
            await ReadJsonAsync(c, (maxImageBytes * 4 / 3) + (8 * 1024 * 1024), root => self.ReadJson(root, dimension, maxImageBytes), maxDepth: 8);
            if (self._image is not null) c.RequestServices.GetRequiredService<ImageEmbedder>().EnsureAccepting();
            if (self._itemId is not null) c.RequestServices.GetRequiredService<StorageState>().Require();
            return;
        }

        var form = await ReceiveImagesAsync(c, Form);
        self.Held = form;
        self._image = form.Files[0].Content;
        self.Labels = form.Fields.TryGetValue("labels", out var labels) ? ParseList(labels, "labels") : throw JsonInput.Invalid("The form needs 'labels': a JSON array of 2 to 1,000 strings.", "labels");
        if (form.Fields.TryGetValue("templates", out var templates)) self.Templates = ParseList(templates, "templates");
        self.Check();
    });

    /// <summary>The subject's vector: given, stored, or the photo embedded.</summary>
    public async Task<float[]> SubjectAsync(StorageState storage, ImageEmbedder images, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(images);
        if (_vector is not null) return _vector;
        if (_itemId is not null)
        {
            return (await storage.Require().GetAsync(_itemId, withEmbedding: true, cancellationToken))?.Embedding ?? throw ItemsEndpoints.NotFound(_itemId).Exception();
        }

        return (await images.EmbedAsync(_image!.Value, cancellationToken)).Vector;
    }

    private void ReadJson(JsonElement root, int dimension, long maxImageBytes)
    {
        if (root.ValueKind != JsonValueKind.Object) throw JsonInput.Invalid("The body must be a JSON object with a subject (\"item_id\", \"image\" or \"vector\") and \"labels\".");
        var subjects = Subjects.Where(s => root.TryGetProperty(s, out _)).ToList();
        if (subjects.Count != 1)
        {
            throw JsonInput.Invalid(subjects.Count == 0
                ? "The body needs one subject: \"item_id\", \"image\" (a data: URI) or \"vector\" (or send a photo as multipart 'file')."
                : $"Send one subject, not {string.Join(" and ", subjects.Select(s => $"\"{s}\""))}.");
        }

        Labels = root.TryGetProperty("labels", out var labels) ? List(labels, "labels") : throw JsonInput.Invalid("\"labels\" is missing: an array of 2 to 1,000 strings.", "labels");
        if (root.TryGetProperty("templates", out var templates) && templates.ValueKind != JsonValueKind.Null) Templates = List(templates, "templates");
        Check();
        var subject = root.GetProperty(subjects[0]);
        switch (subjects[0])
        {
            case "item_id": _itemId = ItemsEndpoints.CheckId(JsonInput.String(subject, "item_id")); break;
            case "vector": _vector = JsonInput.Vector(subject, "vector", dimension); break;
            default:
                var image = JsonInput.DataUri(subject, "image", "image", maxImageBytes);
                Held = image;
                _image = image.Memory;
                break;
        }
    }

    private void Check()
    {
        if (Labels.Count is < 2 or > MaxLabels) throw JsonInput.Invalid($"\"labels\" must hold 2 to {MaxLabels:N0} labels, not {Labels.Count:N0}.", "labels");
        if (Labels.FirstOrDefault(l => string.IsNullOrWhiteSpace(l) || l.Length > MaxLabelChars) is { } bad)
        {
            throw JsonInput.Invalid($"A label has 1 to {MaxLabelChars:N0} characters and is not blank: '{bad[..Math.Min(bad.Length, 40)]}'.", "labels");
        }

        if (Labels.GroupBy(l => l, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice) throw JsonInput.Invalid($"The label '{twice.Key}' is given twice.", "labels");
        if (Templates.Count is < 1 or > MaxTemplates) throw JsonInput.Invalid($"\"templates\" must hold 1 to {MaxTemplates} templates.", "templates");
        if (Templates.FirstOrDefault(t => !t.Contains("{}", StringComparison.Ordinal) || t.Length > MaxLabelChars) is { } template)
        {
            throw JsonInput.Invalid($"A template holds {{}} where the label goes, e.g. \"a photo of a {{}}.\"; '{template[..Math.Min(template.Length, 40)]}' does not.", "templates");
        }
    }

    private static List<string> List(JsonElement array, string name)
    {
        if (array.ValueKind != JsonValueKind.Array) throw JsonInput.Invalid($"\"{name}\" must be an array of strings.", name);
        if (array.GetArrayLength() > MaxLabels) throw JsonInput.Invalid($"\"{name}\" holds {array.GetArrayLength():N0} strings; at most {MaxLabels:N0} are taken.", name);
        return [.. array.EnumerateArray().Select((e, i) => JsonInput.String(e, $"{name}[{i}]", name))];
    }

    private static List<string> ParseList(string json, string name)
    {
        using var document = JsonInput.Parse(System.Text.Encoding.UTF8.GetBytes(json), maxDepth: 4);
        return List(document.RootElement, name);
    }
}

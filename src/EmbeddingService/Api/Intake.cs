using System.Text.Json;
using EmbeddingService.Errors;
using EmbeddingService.Inference;
using EmbeddingService.Uploads;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>
/// A request's body, bound before the handler runs (ASP.NET Core's <c>BindAsync</c>). An intake that needs the model
/// asks the embedder first (model not ready, pipeline full: refused from the headers, before any byte is read), then
/// receives within the upload bounds and parses. Whatever could not be taken is its <see cref="Refusal"/>, which
/// <see cref="ApiErrorFilter"/> answers without calling the handler, and which disposes the intake afterwards.
/// </summary>
public abstract class Intake : IDisposable
{
    public ApiError? Refusal { get; private set; }

    /// <summary>How long the body took to receive and parse (Server-Timing's <c>receive</c>).</summary>
    public TimeSpan Received { get; private set; }

    /// <summary>What the intake holds until the response is written (received buffers, decoded images).</summary>
    private protected IDisposable? Held { get; set; }

    public void Dispose()
    {
        Held?.Dispose();
        Held = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>Runs <paramref name="take"/> on a new intake; an <see cref="ApiException"/> becomes its refusal.</summary>
    protected static async ValueTask<T> TakeAsync<T>(HttpContext context, Func<T, HttpContext, Task> take)
        where T : Intake, new()
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(take);
        var intake = new T();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await take(intake, context);
            intake.Received = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        }
        catch (ApiException e)
        {
            intake.Dispose();
            intake.Refusal = e.Error;
        }

        return intake;
    }

    /// <summary>Images in a multipart form, once the vision pipeline has room for them.</summary>
    protected static Task<ReceivedForm> ReceiveImagesAsync(HttpContext context, FormSpec spec)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.RequestServices.GetRequiredService<ImageEmbedder>().EnsureAccepting();
        return context.RequestServices.GetRequiredService<UploadReceiver>().ReceiveAsync(context.Request, spec, context.RequestAborted);
    }

    /// <summary>Receives a JSON body of at most <paramref name="maxBytes"/>, parses it and hands its root to <paramref name="read"/>.</summary>
    protected static async Task ReadJsonAsync(HttpContext context, long maxBytes, Action<JsonElement> read, int maxDepth = 32)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(read);
        using var body = await context.RequestServices.GetRequiredService<UploadReceiver>().ReceiveBodyAsync(context.Request, maxBytes, context.RequestAborted);
        using var document = JsonInput.Parse(body.Files[0].Content, maxDepth);
        read(document.RootElement);
    }

    protected static RequestLimits Limits(HttpContext context) => context.RequestServices.GetRequiredService<IOptions<RequestLimits>>().Value;
}

/// <summary>One image in the multipart field <c>file</c> (<c>/embed-image</c>).</summary>
public sealed class ImageUpload : Intake
{
    private static readonly FormSpec Spec = new(EmbedImageEndpoints.FileField, StopAtFirstFile: true);
    private ReceivedForm? _form;

    public ReadOnlyMemory<byte> Content => _form!.Files[0].Content;

    public static ValueTask<ImageUpload> BindAsync(HttpContext context) =>
        TakeAsync<ImageUpload>(context, async (self, c) => self.Held = self._form = await ReceiveImagesAsync(c, Spec));

}

/// <summary>Several images in multipart parts named <c>files</c>, up to MAX_BATCH_ITEMS (<c>/embed-images</c>).</summary>
public sealed class ImageUploads : Intake
{
    private ReceivedForm? _form;

    public IReadOnlyList<UploadedFile> Files => _form!.Files;

    public static ValueTask<ImageUploads> BindAsync(HttpContext context) => TakeAsync<ImageUploads>(context, async (self, c) =>
    {
        var limits = Limits(c);
        self.Held = self._form = await ReceiveImagesAsync(c, new FormSpec(EmbedImagesEndpoints.FilesField, MaxFiles: limits.MaxBatchItems, MaxBodyBytes: limits.MaxBatchUploadBytes));
    });

}

/// <summary><c>{"text": "..."}</c> or <c>{"texts": [...]}</c> (<c>/embed-text</c>), within MAX_BATCH_ITEMS x MAX_TEXT_CHARS.</summary>
public sealed class TextsBody : Intake
{
    public IReadOnlyList<string> Texts { get; private set; } = [];

    /// <summary>The request had the single form (<c>"text"</c>), so the answer has one <c>"embedding"</c>.</summary>
    public bool IsSingle { get; private set; }

    public static ValueTask<TextsBody> BindAsync(HttpContext context) => TakeAsync<TextsBody>(context, (self, c) =>
    {
        c.RequestServices.GetRequiredService<TextEmbedder>().EnsureAccepting();
        var limits = Limits(c);
        return ReadJsonAsync(c, limits.MaxTextBodyBytes, root => self.Read(root, limits), maxDepth: 16);
    });

    private void Read(JsonElement root, RequestLimits limits)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw JsonInput.Invalid("The body must be a JSON object with \"text\" (a string) or \"texts\" (an array of strings).");
        }

        var hasText = root.TryGetProperty("text", out var text);
        var hasTexts = root.TryGetProperty("texts", out var many);
        if (hasText == hasTexts)
        {
            throw JsonInput.Invalid(hasText ? "Send either \"text\" or \"texts\", not both." : "The body needs \"text\" (a string) or \"texts\" (an array of strings).");
        }

        IsSingle = hasText;
        if (hasText)
        {
            Texts = [JsonInput.Text(text, "text", limits)];
            return;
        }

        if (many.ValueKind != JsonValueKind.Array) throw JsonInput.Invalid("\"texts\" must be an array of strings.", "texts");
        JsonInput.Count(many, "texts", limits);
        Texts = [.. many.EnumerateArray().Select((t, i) => JsonInput.Text(t, $"texts[{i}]", limits))];
    }
}

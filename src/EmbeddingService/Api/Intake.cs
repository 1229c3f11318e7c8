using EmbeddingService.Inference;
using EmbeddingService.Uploads;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>
/// A request's body, bound before the handler runs (ASP.NET Core's <c>BindAsync</c>): refused from the headers when
/// the model or the pipeline cannot take it ("not now" first), then received within the upload bounds. What could
/// not be taken is a <see cref="Refusal"/>, which <see cref="ApiErrorFilter"/> answers without calling the handler; the
/// filter also disposes the body after the handler. So every route receives, refuses and disposes the same way.
/// </summary>
public interface IIntake : IDisposable
{
    ApiError? Refusal { get; }
}

/// <summary>One image in the multipart field <c>file</c> (<c>/embed-image</c>).</summary>
public sealed class ImageUpload : IIntake
{
    private static readonly FormSpec Spec = new(EmbedImageEndpoints.FileField, StopAtFirstFile: true);
    private readonly ReceivedForm? _form;

    private ImageUpload(ReceivedForm? form, ApiError? error) => (_form, Refusal) = (form, error);

    public ApiError? Refusal { get; }

    public ReadOnlyMemory<byte> Content => _form!.Files[0].Content;

    public static async ValueTask<ImageUpload?> BindAsync(HttpContext context)
    {
        var (form, error) = await Intake.ImagesAsync(context, Spec, "The multipart form has no field named 'file'.");
        return new(form, error);
    }

    public void Dispose() => _form?.Dispose();
}

/// <summary>Several images in multipart parts named <c>files</c>, up to MAX_BATCH_ITEMS (<c>/embed-images</c>).</summary>
public sealed class ImageUploads : IIntake
{
    private readonly ReceivedForm? _form;

    private ImageUploads(ReceivedForm? form, ApiError? error) => (_form, Refusal) = (form, error);

    public ApiError? Refusal { get; }

    public IReadOnlyList<UploadedFile> Files => _form!.Files;

    public static async ValueTask<ImageUploads?> BindAsync(HttpContext context)
    {
        var limits = context.RequestServices.GetRequiredService<IOptions<RequestLimits>>().Value;
        var spec = new FormSpec(EmbedImagesEndpoints.FilesField, MaxFiles: limits.MaxBatchItems, MaxBodyBytes: limits.MaxBatchUploadBytes);
        var (form, error) = await Intake.ImagesAsync(context, spec, "The multipart form has no parts named 'files'.");
        return new(form, error);
    }

    public void Dispose() => _form?.Dispose();
}

/// <summary>A JSON body of texts, within the limit MAX_BATCH_ITEMS x MAX_TEXT_CHARS gives (<c>/embed-text</c>).</summary>
public sealed class TextRequestBody : IIntake
{
    private readonly ReceivedForm? _body;

    private TextRequestBody(ReceivedForm? body, ApiError? error) => (_body, Refusal) = (body, error);

    public ApiError? Refusal { get; }

    public ReadOnlyMemory<byte> Json => _body!.Files[0].Content;

    public static async ValueTask<TextRequestBody?> BindAsync(HttpContext context)
    {
        var services = context.RequestServices;
        if (Intake.Refusal(context, services.GetRequiredService<TextEmbedder>().EnsureAccepting) is { } refused)
        {
            return new(null, refused);
        }

        var limits = services.GetRequiredService<IOptions<RequestLimits>>().Value;
        var (body, failure) = await services.GetRequiredService<UploadReceiver>().ReceiveBodyAsync(context.Request, limits.MaxTextBodyBytes, context.RequestAborted);
        return new(body, failure is null ? null : ApiError.Upload(failure));
    }

    public void Dispose() => _body?.Dispose();
}

internal static class Intake
{
    /// <summary>Runs a check that refuses from the headers alone (model not ready, pipeline full); null when it passes.</summary>
    public static ApiError? Refusal(HttpContext context, Action check)
    {
        try
        {
            check();
            return null;
        }
        catch (Exception e) when (ApiError.From(e, context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value) is { } error)
        {
            return error;
        }
    }

    /// <summary>
    /// Refuses when the vision pipeline is full or the model is not ready, then receives the form; it has at least one
    /// file, or the error says what is missing (422, as FastAPI answers a missing field).
    /// </summary>
    public static async Task<(ReceivedForm? Form, ApiError? Error)> ImagesAsync(HttpContext context, FormSpec spec, string whenNoFile)
    {
        var services = context.RequestServices;
        if (Refusal(context, services.GetRequiredService<ImageEmbedder>().EnsureAccepting) is { } refused)
        {
            return (null, refused);
        }

        var (form, failure) = await services.GetRequiredService<UploadReceiver>().ReceiveAsync(context.Request, spec, context.RequestAborted);
        if (failure is not null)
        {
            return (null, failure.Kind == UploadFailureKind.NotMultipart
                ? MissingField(spec.FileField, $"Send the image as multipart/form-data with a field named '{spec.FileField}'.")
                : ApiError.Upload(failure));
        }

        if (form!.Files.Count == 0)
        {
            form.Dispose();
            return (null, MissingField(spec.FileField, whenNoFile));
        }

        return (form, null);
    }

    /// <summary>FastAPI's answer to a missing form field: 422 with FastAPI's error entry beside the detail.</summary>
    public static ApiError MissingField(string field, string detail) => new ApiError(StatusCodes.Status422UnprocessableEntity, detail)
    {
        Extensions = new Dictionary<string, object?>
        {
            ["errors"] = new[] { new Dictionary<string, object?> { ["type"] = "missing", ["loc"] = new[] { "body", field }, ["msg"] = "Field required" } },
        },
    };
}

/// <summary>
/// The one place a route's failure becomes an answer: an intake that could not take the body, or an exception that
/// <see cref="ApiError.From"/> knows, is written in the route family's shape; intakes are disposed after the handler.
/// </summary>
internal sealed class ApiErrorFilter(bool openAi) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        try
        {
            foreach (var argument in context.Arguments)
            {
                if (argument is IIntake { Refusal: { } refused }) return Render(http, refused);
            }

            return await next(context);
        }
        catch (Exception e) when (ApiError.From(e, http.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value) is { } error)
        {
            return Render(http, error);
        }
        finally
        {
            foreach (var argument in context.Arguments) (argument as IIntake)?.Dispose();
        }
    }

    private IResult Render(HttpContext context, ApiError error) => openAi ? OpenAiEmbeddingsEndpoints.Error(context, error) : Problems.Of(context, error);
}

public static class ApiErrorFilterExtensions
{
    /// <summary>Answers the route's failures with <see cref="ApiError"/> (problem+json) and disposes its intakes.</summary>
    public static RouteHandlerBuilder WithApiErrors(this RouteHandlerBuilder builder) => builder.AddEndpointFilter(new ApiErrorFilter(openAi: false));
}

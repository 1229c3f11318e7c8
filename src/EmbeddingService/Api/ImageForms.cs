using EmbeddingService.Inference;
using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

/// <summary>How every route that takes images in a multipart form receives them.</summary>
internal static class ImageForms
{
    /// <summary>
    /// Refuses from the headers when the vision pipeline is full or the model is not ready, then receives the body
    /// under the upload bounds. The form has at least one file, or the problem says what is missing.
    /// </summary>
    public static async Task<(ReceivedForm? Form, ProblemHttpResult? Problem)> ReceiveAsync(HttpContext context, ImageEmbedder embedder, UploadReceiver uploads,
        FormSpec spec, ApiOptions options, string whenNoFile, CancellationToken cancellationToken)
    {
        if (Problems.Refusal(context, embedder.EnsureAccepting, options) is { } refused)
        {
            return (null, refused);
        }

        var (form, failure) = await uploads.ReceiveAsync(context.Request, spec, cancellationToken);
        if (failure is not null)
        {
            return (null, Problems.Upload(context, failure, spec.FileField));
        }

        if (form!.Files.Count == 0)
        {
            form.Dispose();
            return (null, Problems.MissingField(spec.FileField, whenNoFile));
        }

        return (form, null);
    }
}

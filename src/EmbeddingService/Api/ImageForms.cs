using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmbeddingService.Api;

/// <summary>How every route that takes images in a multipart form receives them.</summary>
internal static class ImageForms
{
    /// <summary>The image routes' intake (<see cref="Intake.ImagesAsync"/>) for handlers that take an image or JSON by content type.</summary>
    public static async Task<(ReceivedForm? Form, ProblemHttpResult? Problem)> ReceiveAsync(HttpContext context, FormSpec spec, string whenNoFile)
    {
        var (form, error) = await Intake.ImagesAsync(context, spec, whenNoFile);
        return (form, error is null ? null : Problems.Of(context, error));
    }
}

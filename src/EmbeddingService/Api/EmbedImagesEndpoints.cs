using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

public static class EmbedImagesEndpoints
{
    public const string FilesField = "files";

    /// <summary><c>POST /embed-images</c>: multipart with several <c>files</c> parts -> their embeddings in order, all or nothing.</summary>
    public static IEndpointRouteBuilder MapEmbedImages(this IEndpointRouteBuilder app)
    {
        app.MapPost("/embed-images", EmbedImagesAsync)
            .WithName("EmbedImages")
            .WithSummary("Embed several images")
            .WithDescription("Upload images as multipart/form-data parts named 'files' (up to MAX_BATCH_ITEMS); returns " +
                "{\"embeddings\": [[512 floats], ...]} in the order of the parts. If any image is unusable, nothing is returned: " +
                "the first bad part decides the status (413 for an image over MAX_IMAGE_PIXELS, else 400) and the detail names each bad part by index and filename.")
            .Produces<EmbeddingsResponse>()
            .WithTags(ApiDocs.Embeddings)
            .AnswersProblems(400, 408, 413, 422, 503)
            .WithApiErrors()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<Results<Ok<EmbeddingsResponse>, ProblemHttpResult>> EmbedImagesAsync(
        ImageUploads uploads, ImageEmbedder embedder, HttpContext context, CancellationToken cancellationToken)
    {
        var files = uploads.Files;
        try
        {
            var embeddings = await embedder.EmbedManyAsync([.. files.Select(f => f.Content)], cancellationToken);
            return TypedResults.Ok(new EmbeddingsResponse([.. embeddings.Select(e => e.Vector)], ClipModel.DisplayName, embeddings[0].Device));
        }
        catch (BatchRejectedException e)
        {
            return Problems.Of(context, ApiError.Batch(e, files.Count, i => $"part {i} ({files[i].FileName ?? "no filename"})") with
            {
                Extensions = new Dictionary<string, object?>
                {
                    ["errors"] = e.Rejected.OrderBy(r => r.Index)
                        .Select(r => new Dictionary<string, object?> { ["index"] = r.Index, ["filename"] = files[r.Index].FileName, ["detail"] = r.Reason.Message }).ToArray(),
                },
            });
        }
    }
}

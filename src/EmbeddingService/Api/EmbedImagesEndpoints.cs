using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Uploads;
using EmbeddingService.Errors;
using Microsoft.AspNetCore.Http.HttpResults;

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
                "{\"embeddings\": [[embedding_dimension floats], ...]} in the order of the parts. If any image is unusable, nothing is returned: " +
                "the first bad part decides the status (413 for an image over MAX_IMAGE_PIXELS, else 400) and the detail names each bad part by index and filename.")
            .WithMultipartFiles(FilesField, many: true)
            .Produces<EmbeddingsResponse>()
            .WithTags(ApiDocs.Embeddings)
            .AnswersProblems(400, 408, 413, 422, 503)
            .WithApiErrors()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<Ok<EmbeddingsResponse>> EmbedImagesAsync(ImageUploads uploads, ImageEmbedder embedder, CancellationToken cancellationToken)
    {
        var files = uploads.Files;
        try
        {
            var embeddings = await embedder.EmbedManyAsync([.. files.Select(f => f.Content)], cancellationToken);
            return TypedResults.Ok(new EmbeddingsResponse([.. embeddings.Select(e => e.Vector)], embeddings[0].Model, embeddings[0].Device));
        }
        catch (BatchRejectedException e)
        {
            throw (ApiError.Batch(e.Rejected, files.Count, i => $"part {i} ({files[i].FileName ?? "no filename"})") with { Extensions = PartErrors(e, files) }).Exception(e);
        }
    }

    /// <summary>Each unusable part by index and filename, beside the detail, so a client can drop them and retry.</summary>
    private static Dictionary<string, object?> PartErrors(BatchRejectedException rejected, IReadOnlyList<UploadedFile> files) => new()
    {
        ["errors"] = rejected.Rejected.OrderBy(r => r.Index)
            .Select(r => new Dictionary<string, object?> { ["index"] = r.Index, ["filename"] = files[r.Index].FileName, ["detail"] = r.Reason.Message }).ToArray(),
    };
}

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
                "400 names each bad part by index and filename.")
            .Produces<EmbeddingsResponse>()
            .DisableAntiforgery();
        return app;
    }

    private static async Task<Results<Ok<EmbeddingsResponse>, ProblemHttpResult>> EmbedImagesAsync(
        HttpContext context, ImageEmbedder embedder, UploadReceiver uploads, IOptions<RequestLimits> limits, IOptions<ApiOptions> options,
        CancellationToken cancellationToken)
    {
        var spec = new FormSpec(FilesField, MaxFiles: limits.Value.MaxBatchItems, MaxBodyBytes: limits.Value.MaxBatchUploadBytes);
        var (received, refused) = await ImageForms.ReceiveAsync(context, embedder, uploads, spec, options.Value, "The multipart form has no parts named 'files'.", cancellationToken);
        if (refused is not null)
        {
            return refused;
        }

        using (var form = received!)
        {
            try
            {
                var embeddings = await embedder.EmbedManyAsync([.. form.Files.Select(f => f.Content)], cancellationToken);
                return TypedResults.Ok(new EmbeddingsResponse([.. embeddings.Select(e => e.Vector)], ClipModel.DisplayName, embeddings[0].Device));
            }
            catch (BatchRejectedException e)
            {
                var parts = e.Rejected.Select(r => (r.Index, Name: form.Files[r.Index].FileName, r.Reason.Message)).ToList();
                return Problems.Create(StatusCodes.Status400BadRequest,
                    $"{parts.Count} of {form.Files.Count} images cannot be used, so none was embedded: " +
                    string.Join("; ", parts.Select(p => $"part {p.Index} ({p.Name ?? "no filename"}): {p.Message}")),
                    new Dictionary<string, object?>
                    {
                        ["errors"] = parts.Select(p => new Dictionary<string, object?> { ["index"] = p.Index, ["filename"] = p.Name, ["detail"] = p.Message }).ToArray(),
                    });
            }
            catch (Exception e) when (Problems.Embedding(context, e, options.Value) is { } problem)
            {
                return problem;
            }
        }
    }
}

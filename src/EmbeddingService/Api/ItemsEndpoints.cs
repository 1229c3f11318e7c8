using EmbeddingService.Errors;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>The catalogue: items with their embedding, metadata and thumbnail, in the vector store.</summary>
public static class ItemsEndpoints
{
    public static IEndpointRouteBuilder MapItems(this IEndpointRouteBuilder app)
    {
        var items = app.MapGroup("/items").WithTags(ApiDocs.StoreAndSearch).WithApiErrors();
        items.MapPut("/{id}", PutAsync).WithName("PutItem").WithSummary("Add or replace an item")
            .WithDescription("multipart 'file' (an image) with optional fields 'metadata' (a JSON object), 'product' (the product it is a photo of, 1-256 " +
                "characters; without one an item is a product of its own) and 'text' (its title, brand, SKU: words for keyword and hybrid search), or JSON " +
                "{\"vector\": [embedding_dimension floats], \"metadata\": {...}, \"product\": \"...\", \"text\": \"...\"} for vectors computed elsewhere (no model " +
                "needed). 201 when new, 200 when replaced; \"near_duplicates\": up to 5 stored items within DUPLICATE_MAX_DISTANCE ([] when none).")
            .Produces<ItemResponse>(StatusCodes.Status200OK).Produces<ItemResponse>(StatusCodes.Status201Created)
            .AnswersProblems(400, 408, 413, 422, 503)
            .DisableAntiforgery();
        items.MapGet("/{id}", GetAsync).WithName("GetItem").WithSummary("An item's metadata (and its vector with ?include=embedding)")
            .Produces<ItemResponse>().AnswersProblems(400, 404, 503);
        items.MapGet("/{id}/thumbnail", ThumbnailAsync).WithName("GetThumbnail").WithSummary("An item's thumbnail (JPEG, longest side 256)")
            .Produces(StatusCodes.Status304NotModified).AnswersProblems(400, 404, 503);
        items.MapGet("/", ListAsync).WithName("ListItems").WithSummary("Items in id order, a page at a time (?limit=&after=)")
            .Produces<ItemPage>().AnswersProblems(400, 422, 503);
        items.MapDelete("/{id}", DeleteAsync).WithName("DeleteItem").WithSummary("Delete an item")
            .AnswersProblems(400, 404, 503);
        return app;
    }

    /// <summary>How many near duplicates a PUT names.</summary>
    private const int NearDuplicatesShown = 5;

    /// <summary>Ids: 1-256 characters, no control characters.</summary>
    internal static string CheckId(string id) => id.Length is < 1 or > 256 || id.Any(char.IsControl)
        ? throw ApiError.Malformed("An item id has 1 to 256 characters and no control characters.", "id").Exception()
        : id;

    internal static ApiError NotFound(string id) => new(ErrorKind.NotFound, $"There is no item '{id}'.");

    private static async Task<IResult> PutAsync(string id, ItemBody body, StorageState storage, ImageEmbedder images, IOptions<StorageOptions> options,
        IOptions<ModelOptions> model, CancellationToken cancellationToken)
    {
        var store = storage.Require();
        var item = await body.ToItemAsync(CheckId(id), store.Identity.Model, images, options.Value.StoreThumbnails, model.Value.Variant.ToString().ToLowerInvariant(), cancellationToken);
        var (created, stored) = await store.UpsertAsync(item, cancellationToken);
        // Checked on the way in: its near duplicates are recorded (GET /duplicates) and said.
        var response = ItemResponse.From(stored) with
        {
            NearDuplicates = await store.ScanAsync(item.Id, item.Embedding, options.Value.DuplicateMaxDistance, NearDuplicatesShown, cancellationToken),
        };
        return created ? TypedResults.Created($"/items/{Uri.EscapeDataString(id)}", response) : TypedResults.Ok(response);
    }

    private static async Task<IResult> GetAsync(string id, string? include, StorageState storage, CancellationToken cancellationToken)
    {
        var item = await storage.Require().GetAsync(CheckId(id), include == "embedding", cancellationToken);
        return item is null ? NotFound(id).Result() : TypedResults.Ok(ItemResponse.From(item));
    }

    private static async Task<IResult> ThumbnailAsync(string id, HttpContext context, StorageState storage, CancellationToken cancellationToken)
    {
        var thumbnail = await storage.Require().GetThumbnailAsync(CheckId(id), cancellationToken);
        if (thumbnail is null) return new ApiError(ErrorKind.NotFound, $"Item '{id}' does not exist or has no thumbnail.").Result();
        context.Response.Headers.ETag = thumbnail.ETag;
        context.Response.Headers.CacheControl = "public, max-age=300";
        return context.Request.Headers.IfNoneMatch.Contains(thumbnail.ETag)
            ? TypedResults.StatusCode(StatusCodes.Status304NotModified)
            : TypedResults.File(thumbnail.Bytes, thumbnail.ContentType);
    }

    private static async Task<IResult> ListAsync(int? limit, string? after, StorageState storage, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000) throw ApiError.Invalid("limit must be from 1 to 1000.", "limit").Exception();
        var (items, next) = await storage.Require().ListAsync(limit ?? 50, after, cancellationToken);
        return TypedResults.Ok(new ItemPage([.. items.Select(ItemResponse.From)], next));
    }

    private static async Task<IResult> DeleteAsync(string id, StorageState storage, CancellationToken cancellationToken) =>
        await storage.Require().DeleteAsync(CheckId(id), cancellationToken) ? TypedResults.NoContent() : NotFound(id).Result();
}

using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text.Json;
using EmbeddingService.Imaging;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Storage;
using EmbeddingService.Uploads;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>The catalogue: items with their embedding, metadata and thumbnail, in the vector store.</summary>
public static class ItemsEndpoints
{
    public const string MetadataField = "metadata";

    /// <summary>512 numbers written in full (~7 KB) beside metadata of up to the multipart field's 64 KiB.</summary>
    private const int VectorBodyBytes = 16 * 1024 + UploadReceiver.MaxTextFieldBytes;
    private static readonly FormSpec Form = new(EmbedImageEndpoints.FileField, TextFields: [MetadataField]);

    public static IEndpointRouteBuilder MapItems(this IEndpointRouteBuilder app)
    {
        // Storage and embedding faults (database down, model not ready, a bad image) are answered by the one error filter.
        var items = app.MapGroup("/items").WithTags(ApiDocs.StoreAndSearch).AddEndpointFilter(new ApiErrorFilter(openAi: false));
        items.MapPut("/{id}", PutAsync).WithName("PutItem").WithSummary("Add or replace an item")
            .WithDescription("multipart 'file' (an image) with an optional 'metadata' field (a JSON object), or JSON {\"vector\": [512 floats], " +
                "\"metadata\": {...}} for vectors computed elsewhere. 201 when new, 200 when replaced.")
            .Produces<ItemResponse>(StatusCodes.Status200OK).Produces<ItemResponse>(StatusCodes.Status201Created)
            .AnswersProblems(400, 408, 413, 422, 503)
            .DisableAntiforgery();
        items.MapGet("/{id}", GetAsync).WithName("GetItem").WithSummary("An item's metadata (and its vector with ?include=embedding)")
            .AnswersProblems(400, 404, 503);
        items.MapGet("/{id}/thumbnail", ThumbnailAsync).WithName("GetThumbnail").WithSummary("An item's thumbnail (JPEG, longest side 256)")
            .Produces(StatusCodes.Status304NotModified).AnswersProblems(400, 404, 503);
        items.MapGet("/", ListAsync).WithName("ListItems").WithSummary("Items in id order, a page at a time (?limit=&after=)")
            .AnswersProblems(400, 503);
        items.MapDelete("/{id}", DeleteAsync).WithName("DeleteItem").WithSummary("Delete an item")
            .AnswersProblems(400, 404, 503);
        return app;
    }

    /// <summary>Ids: 1-256 characters, no control characters.</summary>
    internal static ProblemHttpResult? CheckId(string id) =>
        id.Length is < 1 or > 256 || id.Any(char.IsControl)
            ? Problems.Create(StatusCodes.Status400BadRequest, "An item id has 1 to 256 characters and no control characters.")
            : null;

    private static async Task<IResult> PutAsync(string id, HttpContext context, StorageState storage, ImageEmbedder images, UploadReceiver uploads,
        IOptions<StorageOptions> storageOptions, IOptions<ModelOptions> model, CancellationToken cancellationToken)
    {
        if (CheckId(id) is { } badId) return badId;
        var store = storage.Require();
        var (item, problem) = context.Request.HasJsonContentType()
            ? await VectorItemAsync(id, context, uploads, Variant(model), cancellationToken)
            : await ImageItemAsync(id, context, images, storageOptions.Value.StoreThumbnails, Variant(model), cancellationToken);
        if (problem is not null) return problem;
        var (created, stored) = await store.UpsertAsync(item!, cancellationToken);
        var response = ItemResponse.From(stored);
        return created ? TypedResults.Created($"/items/{Uri.EscapeDataString(id)}", response) : TypedResults.Ok(response);
    }

    /// <summary>JSON <c>{"vector": [512], "metadata": {...}}</c>: a vector computed elsewhere; no model needed.</summary>
    private static async Task<(NewItem? Item, IResult? Problem)> VectorItemAsync(string id, HttpContext context, UploadReceiver uploads, string variant, CancellationToken cancellationToken)
    {
        var (body, failure) = await uploads.ReceiveBodyAsync(context.Request, VectorBodyBytes, cancellationToken);
        if (failure is not null) return (null, Problems.Body(context, failure));
        using (body)
        {
            var (vector, metadata, problem) = ParseVectorBody(body!.Files[0].Content);
            return problem is not null ? (null, problem) : (new NewItem(id, vector!, ClipModel.DisplayName, variant, null, metadata!, null, null), null);
        }
    }

    /// <summary>multipart <c>file</c> (+ <c>metadata</c>): the image embedded, with its SHA-256 and thumbnail.</summary>
    private static async Task<(NewItem? Item, IResult? Problem)> ImageItemAsync(string id, HttpContext context, ImageEmbedder images, bool thumbnails, string variant,
        CancellationToken cancellationToken)
    {
        var (received, refused) = await ImageForms.ReceiveAsync(context, Form, "Send multipart/form-data with an image in 'file', or JSON with \"vector\".");
        if (refused is not null) return (null, refused);
        using var form = received!;
        var metadata = form.Fields.TryGetValue(MetadataField, out var text) ? text : "{}";
        if (CheckMetadata(metadata) is { } badMetadata) return (null, badMetadata);
        var content = form.Files[0].Content;
        var embedding = await images.EmbedAsync(content, thumbnails, cancellationToken);
        return (new NewItem(id, embedding.Vector, ClipModel.DisplayName, variant, Convert.ToHexStringLower(SHA256.HashData(content.Span)), metadata,
            embedding.Thumbnail, embedding.Thumbnail is null ? null : ThumbnailMaker.ContentType), null);
    }

    private static async Task<IResult> GetAsync(string id, string? include, StorageState storage, CancellationToken cancellationToken)
    {
        if (CheckId(id) is { } badId) return badId;
        var item = await storage.Require().GetAsync(id, include == "embedding", cancellationToken);
        return item is null ? NotFound(id) : TypedResults.Ok(ItemResponse.From(item));
    }

    private static async Task<IResult> ThumbnailAsync(string id, HttpContext context, StorageState storage, CancellationToken cancellationToken)
    {
        if (CheckId(id) is { } badId) return badId;
        var thumbnail = await storage.Require().GetThumbnailAsync(id, cancellationToken);
        if (thumbnail is null)
        {
            return Problems.Create(StatusCodes.Status404NotFound, $"Item '{id}' does not exist or has no thumbnail.");
        }

        context.Response.Headers.ETag = thumbnail.ETag;
        context.Response.Headers.CacheControl = "public, max-age=300";
        return context.Request.Headers.IfNoneMatch.Contains(thumbnail.ETag)
            ? TypedResults.StatusCode(StatusCodes.Status304NotModified)
            : TypedResults.File(thumbnail.Bytes, thumbnail.ContentType);
    }

    private static async Task<IResult> ListAsync(int? limit, string? after, StorageState storage, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 1000)
        {
            return Problems.Create(StatusCodes.Status422UnprocessableEntity, "limit must be from 1 to 1000.");
        }

        var (items, next) = await storage.Require().ListAsync(limit ?? 50, after, cancellationToken);
        return TypedResults.Ok(new ItemPage([.. items.Select(ItemResponse.From)], next));
    }

    private static async Task<IResult> DeleteAsync(string id, StorageState storage, CancellationToken cancellationToken)
    {
        if (CheckId(id) is { } badId) return badId;
        return await storage.Require().DeleteAsync(id, cancellationToken) ? TypedResults.NoContent() : NotFound(id);
    }

    internal static ProblemHttpResult NotFound(string id) => Problems.Create(StatusCodes.Status404NotFound, $"There is no item '{id}'.");

    private static string Variant(IOptions<ModelOptions> model) => model.Value.Variant.ToString().ToLowerInvariant();

    /// <summary>Metadata is a JSON object (searched by containment), at most 64 KiB.</summary>
    internal static ProblemHttpResult? CheckMetadata(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
            return document.RootElement.ValueKind != JsonValueKind.Object
                ? Problems.Create(StatusCodes.Status400BadRequest, "metadata must be a JSON object, e.g. {\"brand\": \"acme\", \"category\": \"bags\"}.")
                : JsonText.HasNul(json) ? Problems.Create(StatusCodes.Status400BadRequest, "metadata cannot hold the NUL character (\\u0000).") : null;
        }
        catch (JsonException e)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, $"metadata is not valid JSON: {e.Message}");
        }
    }

    /// <summary>A 512-float vector that is finite and not zero; stored L2-normalized, as the service's own embeddings are.</summary>
    internal static (float[]? Vector, ProblemHttpResult? Problem) ReadVector(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() != 512)
        {
            return (null, Problems.Create(StatusCodes.Status422UnprocessableEntity,
                $"\"vector\" must be an array of 512 numbers{(element.ValueKind == JsonValueKind.Array ? $", not {element.GetArrayLength()}" : string.Empty)}."));
        }

        var vector = new float[512];
        var i = 0;
        foreach (var value in element.EnumerateArray())
        {
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetSingle(out var number) || !float.IsFinite(number))
            {
                return (null, Problems.Create(StatusCodes.Status422UnprocessableEntity, $"\"vector\"[{i}] is not a finite number."));
            }

            vector[i++] = number;
        }

        var norm = TensorPrimitives.Norm(vector);
        if (norm == 0)
        {
            return (null, Problems.Create(StatusCodes.Status422UnprocessableEntity, "\"vector\" is all zeros: it has no direction to compare."));
        }

        TensorPrimitives.Divide(vector, norm, vector);
        return (vector, null);
    }

    private static (float[]? Vector, string? Metadata, ProblemHttpResult? Problem) ParseVectorBody(ReadOnlyMemory<byte> json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("vector", out var vectorElement))
            {
                return (null, null, Problems.Create(StatusCodes.Status422UnprocessableEntity, "The JSON body needs \"vector\" (512 numbers) and may have \"metadata\" (an object)."));
            }

            var (vector, problem) = ReadVector(vectorElement);
            if (problem is not null) return (null, null, problem);
            var metadata = root.TryGetProperty(MetadataField, out var m) ? m.GetRawText() : "{}";
            return CheckMetadata(metadata) is { } badMetadata ? (null, null, badMetadata) : (vector, metadata, null);
        }
        catch (JsonException e)
        {
            return (null, null, Problems.Create(StatusCodes.Status400BadRequest, $"The body is not valid JSON: {e.Message}"));
        }
    }
}

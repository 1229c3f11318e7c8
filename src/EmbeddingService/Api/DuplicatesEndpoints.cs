using System.Globalization;
using System.Text.Json;
using EmbeddingService.Errors;
using EmbeddingService.Storage;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>The catalogue's duplicates, from its stored vectors: the groups, a page at a time, and resolving one.</summary>
public static class DuplicatesEndpoints
{
    public static IEndpointRouteBuilder MapDuplicates(this IEndpointRouteBuilder app)
    {
        var duplicates = app.MapGroup("/duplicates").WithTags(ApiDocs.StoreAndSearch).WithApiErrors();
        duplicates.MapGet("/", ListAsync).WithName("Duplicates").WithSummary("Duplicate groups (exact copies, and near ones within max_distance)")
            .WithDescription("?max_distance= (cosine distance, default DUPLICATE_MAX_DISTANCE = 0.01; at most 0.1) &limit= (1-1000, default 50) &after=GROUP -> " +
                "{\"groups\": [{\"group\", \"exact\", \"items\": [{\"id\", \"distance\"}], \"keep\"}], \"next\", \"unscanned\", \"max_distance\"}. exact: every item " +
                "has the same image SHA-256 (exact copies are groups of their own); near groups join items within max_distance, transitively. keep: the " +
                "largest image, then the oldest item. distance: to the kept item. unscanned: items not yet checked at this distance (PUT checks each " +
                "item; the duplicates command checks the rest). Groups and their order are stable on an unchanged store.")
            .Produces<DuplicatesResponse>().AnswersProblems(422, 503);
        duplicates.MapPost("/resolve", ResolveAsync).WithName("ResolveDuplicates").WithSummary("Delete the duplicates named, keeping the others")
            .WithDescription("{\"keep\": [ids], \"delete\": [ids]}: deletes the items of \"delete\" in one transaction, once every item of \"keep\" is found " +
                "(else nothing is deleted); nothing else is touched. -> {\"deleted\": [ids], \"missing\": [ids of \"delete\" that did not exist]}.")
            .WithRequestExamples(("resolve", """{"keep": ["sku-123-front"], "delete": ["sku-123-front-copy", "sku-123-front-small"]}"""))
            .Produces<ResolveResponse>().AnswersProblems(400, 413, 422, 503)
            .DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> ListAsync([FromQuery(Name = "max_distance")] string? maxDistance, string? limit, string? after, StorageState storage,
        IOptions<StorageOptions> options, CancellationToken cancellationToken)
    {
        var store = storage.Require();
        var distance = options.Value.DuplicateMaxDistance;
        if (maxDistance is not null && (!double.TryParse(maxDistance, NumberStyles.Float, CultureInfo.InvariantCulture, out distance) || !(distance > 0 && distance <= 0.1)))
        {
            throw ApiError.Invalid("max_distance must be a cosine distance above 0 and at most 0.1 (0.01 finds resized and recompressed copies).", "max_distance").Exception();
        }

        var count = 50;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.Integer, CultureInfo.InvariantCulture, out count) || count is < 1 or > 1000))
        {
            throw ApiError.Invalid("limit must be a whole number from 1 to 1000.", "limit").Exception();
        }

        var page = await store.DuplicatesAsync(distance, count, after, cancellationToken);
        return TypedResults.Ok(new DuplicatesResponse(page.Groups, page.Next, page.Unscanned, distance));
    }

    private static async Task<IResult> ResolveAsync(ResolveBody body, StorageState storage, CancellationToken cancellationToken)
    {
        var deleted = await storage.Require().DeleteManyAsync(body.Keep, body.Delete, cancellationToken);
        return TypedResults.Ok(new ResolveResponse(deleted, [.. body.Delete.Except(deleted, StringComparer.Ordinal).Order(StringComparer.Ordinal)]));
    }
}

/// <param name="Unscanned">Items not checked at this distance since they changed: run the duplicates command to include them.</param>
public sealed record DuplicatesResponse(IReadOnlyList<DuplicateGroup> Groups, string? Next, long Unscanned, double MaxDistance);

public sealed record ResolveResponse(IReadOnlyList<string> Deleted, IReadOnlyList<string> Missing);

/// <summary><c>{"keep": [ids], "delete": [ids]}</c>: each 1-1000 valid ids, none in both.</summary>
public sealed class ResolveBody : Intake
{
    public IReadOnlyList<string> Keep { get; private set; } = [];

    public IReadOnlyList<string> Delete { get; private set; } = [];

    public static ValueTask<ResolveBody> BindAsync(HttpContext context) => TakeAsync<ResolveBody>(context, (self, c) =>
    {
        c.RequestServices.GetRequiredService<StorageState>().Require();
        return ReadJsonAsync(c, 2 * 1000 * 1600, self.Read, maxDepth: 4);
    });

    private void Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("keep", out var keep) || !root.TryGetProperty("delete", out var delete))
        {
            throw JsonInput.Invalid("The body must be {\"keep\": [ids], \"delete\": [ids]}: the items to keep (they must exist) and those to delete.");
        }

        Keep = Ids(keep, "keep");
        Delete = Ids(delete, "delete");
        var both = Keep.Intersect(Delete, StringComparer.Ordinal).ToList();
        if (both.Count > 0) throw JsonInput.Invalid($"'{both[0]}' is in both \"keep\" and \"delete\".", "delete");
    }

    private static List<string> Ids(JsonElement array, string name)
    {
        if (array.ValueKind != JsonValueKind.Array) throw JsonInput.Invalid($"\"{name}\" must be an array of item ids.", name);
        var count = array.GetArrayLength();
        if (count is < 1 or > 1000) throw JsonInput.Invalid($"\"{name}\" must name 1 to 1000 items, not {count}.", name);
        return [.. array.EnumerateArray().Select((id, i) => ItemsEndpoints.CheckId(JsonInput.String(id, $"{name}[{i}]", name))).Distinct(StringComparer.Ordinal)];
    }
}

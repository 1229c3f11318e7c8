namespace EmbeddingService.Api;

/// <summary>How /docs groups the routes (by what a user does) and which error statuses each route documents.</summary>
public static class ApiDocs
{
    public const string Embeddings = "Embeddings";
    public const string StoreAndSearch = "Store and search";
    public const string Operations = "Operations";

    /// <summary>What every route may answer when keys or rate limits are configured.</summary>
    private static readonly int[] Always = [StatusCodes.Status401Unauthorized, StatusCodes.Status429TooManyRequests];

    /// <summary>Documents these statuses as problem+json answers (plus 401 and 429, which every route may give).</summary>
    public static RouteHandlerBuilder AnswersProblems(this RouteHandlerBuilder builder, params int[] statuses)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var status in statuses.Concat(Always)) builder.ProducesProblem(status);
        return builder;
    }
}

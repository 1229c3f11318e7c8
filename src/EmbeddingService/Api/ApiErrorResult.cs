using EmbeddingService.Errors;
using EmbeddingService.Telemetry;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Api;

/// <summary>
/// The one renderer of <see cref="ApiError"/>: it counts the refusal, sets Retry-After, and writes problem+json (through
/// ASP.NET Core's problem details service), or OpenAI's error envelope on <c>/v1/*</c>.
/// </summary>
internal sealed class ApiErrorResult(ApiError error) : IResult, IStatusCodeHttpResult
{
    public int? StatusCode => error.Status;

    public Task ExecuteAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (error.Reason is { } reason) Refusals.Note(context, reason);
        var retryAfter = error.RetryAfterSeconds(context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.RetryAfterSeconds);
        if (retryAfter is { } seconds) context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return context.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal)
            ? TypedResults.Json(OpenAiErrorEnvelope.From(error), statusCode: error.Status).ExecuteAsync(context)
            : TypedResults.Problem(detail: error.Message, statusCode: error.Status,
                extensions: error.Extensions is null ? null : new Dictionary<string, object?>(error.Extensions)).ExecuteAsync(context);
    }
}

/// <summary>
/// Answers a route's failures: an intake's refusal (without calling the handler), or an <see cref="ApiException"/> from
/// the handler; the intakes are disposed after the handler, whatever happened.
/// </summary>
internal sealed class ApiErrorFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            foreach (var argument in context.Arguments)
            {
                if (argument is Intake { Refusal: { } refused }) return new ApiErrorResult(refused);
            }

            return await next(context);
        }
        catch (ApiException e)
        {
            return new ApiErrorResult(e.Error);
        }
        finally
        {
            foreach (var argument in context.Arguments) (argument as Intake)?.Dispose();
        }
    }
}

public static class ApiErrorExtensions
{
    /// <summary>Answers the route's failures with <see cref="ApiError"/> in its family's shape and disposes its intakes.</summary>
    public static TBuilder WithApiErrors<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.AddEndpointFilter(new ApiErrorFilter());

    /// <summary>An error as a route's result (a 404 is an answer, not an exception).</summary>
    internal static IResult Result(this ApiError error) => new ApiErrorResult(error);
}

using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Access;

/// <summary>
/// RATE_LIMIT_PER_MINUTE as a token bucket per API key (per client IP without keys): a minute's worth may come at
/// once, then tokens come back evenly. Probes and metrics are never limited.
/// </summary>
internal static class RequestRateLimits
{
    public static void Configure(RateLimiterOptions options)
    {
        options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(Partition);
        options.OnRejected = RejectAsync;
    }

    private static RateLimitPartition<string> Partition(HttpContext context)
    {
        var perMinute = context.RequestServices.GetRequiredService<IOptions<AccessOptions>>().Value.RateLimitPerMinute;
        if (perMinute == 0)
        {
            return RateLimitPartition.GetNoLimiter(string.Empty);
        }

        var client = context.User.FindFirst(ApiKeyAuthenticationHandler.KeyIdClaim)?.Value is { } keyId
            ? "key " + keyId
            : "ip " + context.Connection.RemoteIpAddress;
        return RateLimitPartition.GetTokenBucketLimiter(client, _ => Bucket(perMinute));
    }

    internal static TokenBucketRateLimiterOptions Bucket(int perMinute)
    {
        // One token at a time, evenly, unless that would mean a timer faster than every 10 ms.
        var period = TimeSpan.FromMinutes(1) / perMinute;
        var tokens = 1;
        if (period < TimeSpan.FromMilliseconds(10))
        {
            tokens = (int)Math.Ceiling(perMinute / 6000.0);
            period = TimeSpan.FromMinutes(1) * tokens / perMinute;
        }

        return new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute,
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = period,
            QueueLimit = 0,
            AutoReplenishment = true,
        };
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var perMinute = context.RequestServices.GetRequiredService<IOptions<AccessOptions>>().Value.RateLimitPerMinute;
        var seconds = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
            ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))
            : Math.Max(1, (int)Math.Ceiling(60.0 / perMinute));
        Telemetry.Refusals.Note(context, "rate_limited");
        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails =
            {
                Status = StatusCodes.Status429TooManyRequests,
                Detail = string.Create(CultureInfo.InvariantCulture,
                    $"Too many requests: this client may send {perMinute} a minute (RATE_LIMIT_PER_MINUTE). Retry after {seconds} s."),
            },
        });
    }
}

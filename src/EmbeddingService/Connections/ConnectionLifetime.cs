using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Connections;

/// <summary>
/// Bounds a keep-alive connection's life, so that a fleet behind a layer-4 balancer (a Kubernetes Service) takes new
/// pods' share: a client's connection stays on the pod it first reached, and pods the autoscaler adds would get no
/// traffic from clients already connected. Past <see cref="ConnectionLifetimeOptions.MaxRequests"/> requests or
/// <see cref="ConnectionLifetimeOptions.MaxAgeSeconds"/> seconds, an answer carries <c>Connection: close</c>: the client
/// gets it whole, then opens a new connection, which the balancer may send elsewhere. Kestrel has no such setting.
/// HTTP/2 connections are left alone (no per-response way to end them; clients bound their own, e.g. .NET's
/// PooledConnectionLifetime). The cost, measured: deploy/README.md.
/// </summary>
public static class ConnectionLifetime
{
    public static IServiceCollection AddConnectionLifetime(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ConnectionLifetimeOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        return services;
    }

    public static IApplicationBuilder UseConnectionLifetime(this IApplicationBuilder app)
    {
        var options = app.ApplicationServices.GetRequiredService<IOptions<ConnectionLifetimeOptions>>().Value;
        if (options.MaxRequests == 0 && options.MaxAgeSeconds == 0) return app;
        var maxAge = options.MaxAgeSeconds == 0 ? long.MaxValue : options.MaxAgeSeconds * 1000L;
        var maxRequests = options.MaxRequests == 0 ? long.MaxValue : options.MaxRequests;
        return app.Use((context, next) =>
        {
            if (HttpProtocol.IsHttp11(context.Request.Protocol) && context.Features.Get<IConnectionItemsFeature>()?.Items is { } items)
            {
                var now = Environment.TickCount64;
                if (!items.TryGetValue(typeof(Life), out var known) || known is not Life life) items[typeof(Life)] = life = new Life(now);
                if (++life.Requests >= maxRequests || now - life.Since >= maxAge) context.Response.Headers.Connection = "close";
            }

            return next(context);
        });
    }

    /// <summary>A connection's requests so far and when its first came (requests on one connection come one at a time).</summary>
    private sealed class Life(long since)
    {
        public long Since { get; } = since;

        public long Requests { get; set; }
    }
}

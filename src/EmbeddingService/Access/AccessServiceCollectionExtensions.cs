using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Access;

public static partial class AccessServiceCollectionExtensions
{
    /// <summary>API keys (when configured, every endpoint not marked anonymous needs one) and per-client rate limits.</summary>
    public static IServiceCollection AddAccessControl(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AccessOptions>().Bind(configuration).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ApiKeys>();
        // The core alone: AddAuthentication would bring data protection, whose key ring (written to the home
        // directory at start) nothing here uses.
        services.AddAuthenticationCore(o =>
        {
            o.AddScheme<ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
            o.DefaultScheme = ApiKeyAuthenticationHandler.SchemeName;
        });
        services.AddWebEncoders();
        services.AddOptions<AuthenticationSchemeOptions>(ApiKeyAuthenticationHandler.SchemeName);
        services.AddSingleton<IAuthorizationHandler, ApiKeyRequirementHandler>();
        services.AddAuthorizationBuilder().SetFallbackPolicy(new AuthorizationPolicyBuilder(ApiKeyAuthenticationHandler.SchemeName)
            .AddRequirements(new ApiKeyRequirement()).Build());
        services.AddRateLimiter(RequestRateLimits.Configure);
        return services;
    }

    /// <summary>After the static page (which is public), before the endpoints.</summary>
    public static WebApplication UseAccessControl(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        var keys = app.Services.GetRequiredService<ApiKeys>();
        var options = app.Services.GetRequiredService<IOptions<AccessOptions>>().Value;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("EmbeddingService.Access");
        if (keys.Enabled)
        {
            LogKeys(logger, keys.Count, options.ApiKeysFile is null ? "API_KEYS" : "API_KEYS and API_KEYS_FILE");
        }
        else
        {
            LogOpen(logger);
        }

        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "API keys required: {Count} accepted (from {Source}); /health, /health/live, /health/ready and /ui/ are open")]
    private static partial void LogKeys(ILogger logger, int count, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No API_KEYS or API_KEYS_FILE: every endpoint is open to anyone who can reach this port")]
    private static partial void LogOpen(ILogger logger);
}

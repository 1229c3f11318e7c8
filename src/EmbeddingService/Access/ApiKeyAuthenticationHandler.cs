using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace EmbeddingService.Access;

/// <summary>
/// Reads a key from <c>Authorization: Bearer</c> or <c>X-API-Key</c>. When both are sent, both must be accepted keys.
/// Refusals are problem JSON with <c>WWW-Authenticate: Bearer</c>; keys are never logged or echoed.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeys keys,
    IProblemDetailsService problems) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string HeaderName = "X-API-Key";
    public const string KeyIdClaim = "key_id";
    private const string FailureItem = "api-key-failure";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = new List<string>(2);
        var authorization = Request.Headers.Authorization.ToString();
        if (authorization.Length > 0)
        {
            if (!authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                return Fail("The Authorization header must be 'Bearer <key>'.");
            }

            presented.Add(authorization["Bearer ".Length..].Trim());
        }

        if (Request.Headers.TryGetValue(HeaderName, out var header))
        {
            if (header.Count != 1)
            {
                return Fail($"Send one {HeaderName} header.");
            }

            presented.Add(header.ToString().Trim());
        }

        if (presented.Count == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        // Each one is checked, so two headers never mean "the better of the two".
        string? id = null;
        var valid = true;
        foreach (var key in presented)
        {
            var matched = key.Length > 0 ? keys.Match(key) : null;
            valid &= matched is not null;
            id ??= matched;
        }

        if (!valid)
        {
            return Fail("The API key is not valid.");
        }

        var identity = new ClaimsIdentity([new Claim(KeyIdClaim, id!)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = Context.Items[FailureItem] as string;
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers[HeaderNames.WWWAuthenticate] = failure is null ? "Bearer" : "Bearer error=\"invalid_token\"";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = StatusCodes.Status401Unauthorized,
                Detail = failure ?? $"This endpoint needs an API key: send 'Authorization: Bearer <key>' or '{HeaderName}: <key>'.",
            },
        });
    }

    private Task<AuthenticateResult> Fail(string reason)
    {
        Context.Items[FailureItem] = reason;
        return Task.FromResult(AuthenticateResult.Fail(reason));
    }
}

using Microsoft.AspNetCore.Authorization;

namespace EmbeddingService.Access;

/// <summary>Met by an accepted key, or by anyone when no keys are configured.</summary>
public sealed class ApiKeyRequirement : IAuthorizationRequirement;

public sealed class ApiKeyRequirementHandler(ApiKeys keys) : AuthorizationHandler<ApiKeyRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ApiKeyRequirement requirement)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!keys.Enabled || context.User.Identity?.IsAuthenticated == true)
        {
            context.Succeed(requirement);
        }

        return Task.CompletedTask;
    }
}

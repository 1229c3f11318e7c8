using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Shutdown;

public sealed class ShutdownOptions
{
    /// <summary>Longest time from SIGTERM to exit: admitted requests finish within it, then the process goes.</summary>
    [ConfigurationKeyName("SHUTDOWN_TIMEOUT_S")]
    [Range(1, 3600)]
    public int ShutdownTimeoutSeconds { get; set; } = 30;
}

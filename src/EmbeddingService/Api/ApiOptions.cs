using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Api;

public sealed class ApiOptions
{
    [ConfigurationKeyName("HOST")]
    [Required]
    public string Host { get; set; } = "0.0.0.0";

    [ConfigurationKeyName("PORT")]
    [Range(1, 65535)]
    public int Port { get; set; } = 8000;

    /// <summary>Seconds a client is told to wait (Retry-After) while the model is not ready; a full queue says 1 s.</summary>
    [ConfigurationKeyName("RETRY_AFTER_SECONDS")]
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 5;
}

using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Access;

/// <summary>Who may call the service and how often.</summary>
public sealed class AccessOptions : IValidatableObject
{
    /// <summary>Comma-separated API keys; unset (and no file), the service is open.</summary>
    [ConfigurationKeyName("API_KEYS")]
    public string? ApiKeys { get; set; }

    /// <summary>A file with one key per line (blank lines and lines starting with # ignored), for secrets mounted as files; re-read when it changes.</summary>
    [ConfigurationKeyName("API_KEYS_FILE")]
    public string? ApiKeysFile { get; set; }

    /// <summary>Lets Prometheus scrape <c>/metrics</c> without a key.</summary>
    [ConfigurationKeyName("METRICS_PUBLIC")]
    public bool MetricsPublic { get; set; }

    /// <summary>Requests per minute per key (per client IP without keys); 0, the default, is no limit.</summary>
    [ConfigurationKeyName("RATE_LIMIT_PER_MINUTE")]
    [Range(0, 1_000_000)]
    public int RateLimitPerMinute { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(ApiKeysFile) && !File.Exists(ApiKeysFile))
        {
            yield return new ValidationResult($"API_KEYS_FILE '{ApiKeysFile}' does not exist.", [nameof(ApiKeysFile)]);
        }
    }
}

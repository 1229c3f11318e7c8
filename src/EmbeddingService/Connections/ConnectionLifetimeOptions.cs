using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Connections;

/// <summary>How long one client connection is kept (0: as long as the client likes).</summary>
public sealed class ConnectionLifetimeOptions
{
    /// <summary>Requests answered on one HTTP/1.1 connection before the service asks the client to reconnect.</summary>
    [ConfigurationKeyName("MAX_CONNECTION_REQUESTS")]
    [Range(0, int.MaxValue)]
    public int MaxRequests { get; set; } = 1000;

    /// <summary>Seconds since a connection's first request after which the service asks the client to reconnect.</summary>
    [ConfigurationKeyName("MAX_CONNECTION_AGE_S")]
    [Range(0, 86_400)]
    public int MaxAgeSeconds { get; set; } = 60;
}

using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace EmbeddingService.Storage;

/// <summary>Where vectors are stored (PostgreSQL >= 13 with pgvector >= 0.7; 0.8.2 or later in production) and how they are indexed.</summary>
public sealed class StorageOptions : IValidatableObject
{
    /// <summary><c>postgresql://user:password@host:port/database?sslmode=...</c>, or an Npgsql connection string; unset: no storage.</summary>
    [ConfigurationKeyName("DATABASE_URL")]
    public string? DatabaseUrl { get; set; }

    /// <summary>A standby of DATABASE_URL (streaming replication) for searches and item reads; unset: everything on the primary.</summary>
    [ConfigurationKeyName("DATABASE_READ_URL")]
    public string? ReadUrl { get; set; }

    [ConfigurationKeyName("HNSW_M")]
    [Range(2, 100)]
    public int HnswM { get; set; } = 16;

    [ConfigurationKeyName("HNSW_EF_CONSTRUCTION")]
    [Range(4, 1000)]
    public int HnswEfConstruction { get; set; } = 64;

    /// <summary>Memory for building an index (PostgreSQL's maintenance_work_mem): an HNSW build that fits is many times faster.</summary>
    [ConfigurationKeyName("INDEX_BUILD_MEMORY_MB")]
    [Range(64, 1024 * 1024)]
    public int MaintenanceWorkMemMb { get; set; } = 1024;

    /// <summary>Parallel workers of an index build, used only on pgvector >= 0.8.2 (CVE-2026-3172); older versions build on one.</summary>
    [ConfigurationKeyName("INDEX_BUILD_WORKERS")]
    [Range(0, 64)]
    public int IndexBuildWorkers { get; set; } = 2;

    /// <summary>
    /// The cosine distance (1 - cosine similarity) within which two items are near duplicates: 0.01, Immich's default
    /// for ViT-B/32 (docs/decisions.md, "Duplicates"); at most 0.1, past which items are merely similar.
    /// </summary>
    [ConfigurationKeyName("DUPLICATE_MAX_DISTANCE")]
    [Range(1e-6, 0.1)]
    public double DuplicateMaxDistance { get; set; } = 0.01;

    /// <summary>Up to this many items, the service moves an older store to today's layout itself at start; beyond, the migrate command does it online.</summary>
    [ConfigurationKeyName("MIGRATE_INLINE_LIMIT")]
    [Range(0, int.MaxValue)]
    public int MigrateInlineLimit { get; set; } = 50_000;

    [ConfigurationKeyName("STORE_THUMBNAILS")]
    public bool StoreThumbnails { get; set; } = true;

    /// <summary>int8 vectors are close to fp32 ones but not equal: one store holds one variant unless told otherwise.</summary>
    [ConfigurationKeyName("ALLOW_MIXED_VARIANTS")]
    public bool AllowMixedVariants { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(DatabaseUrl);

    /// <summary>The Npgsql connection string for <see cref="DatabaseUrl"/>.</summary>
    public string ConnectionString() => ToConnectionString(DatabaseUrl!);

    /// <summary>The Npgsql connection string for <see cref="ReadUrl"/>, or null when there is no standby.</summary>
    public string? ReadConnectionString() => string.IsNullOrWhiteSpace(ReadUrl) ? null : ToConnectionString(ReadUrl);

    private static string ToConnectionString(string text)
    {
        var url = text.Trim();
        if (!url.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            return new NpgsqlConnectionStringBuilder(url).ConnectionString;
        }

        var uri = new Uri(url);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } database ? database : "postgres",
        };
        var userInfo = uri.UserInfo.Split(':', 2);
        if (userInfo[0].Length > 0) builder.Username = Uri.UnescapeDataString(userInfo[0]);
        if (userInfo.Length > 1) builder.Password = Uri.UnescapeDataString(userInfo[1]);
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            var key = Uri.UnescapeDataString(parts[0]);
            var value = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : string.Empty;
            builder[key.Equals("sslmode", StringComparison.OrdinalIgnoreCase) ? "SSL Mode" : key] = value;
        }

        return builder.ConnectionString;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        string? error = null;
        if (Enabled)
        {
            try
            {
                ConnectionString();
            }
            catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException or KeyNotFoundException)
            {
                error = $"DATABASE_URL is not a postgresql:// URL or connection string: {e.Message}";
            }

            try
            {
                ReadConnectionString();
            }
            catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException or KeyNotFoundException)
            {
                error ??= $"DATABASE_READ_URL is not a postgresql:// URL or connection string: {e.Message}";
            }
        }

        if (error is not null)
        {
            yield return new ValidationResult(error, [nameof(DatabaseUrl)]);
        }
    }
}

using Npgsql;

namespace EmbeddingService.Tests.Support;

/// <summary>A database of its own in the test cluster that scripts/test.sh starts (TEST_DATABASE_URL), dropped afterwards.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    public const string MissingMessage = "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts PostgreSQL + pgvector (scripts/postgres.sh)";

    private TestDatabase(string url) => Url = url;

    public static string? ServerUrl => Environment.GetEnvironmentVariable("TEST_DATABASE_URL") is { Length: > 0 } url ? url : null;

    /// <summary>The postgresql:// URL of this database.</summary>
    public string Url { get; }

    public static async Task<TestDatabase> CreateAsync()
    {
        var server = ServerUrl ?? throw new InvalidOperationException(MissingMessage);
        var name = $"test_{Guid.NewGuid():N}";
        await AdminAsync($"CREATE DATABASE {name}");
        return new TestDatabase(server[..server.LastIndexOf('/')] + "/" + name);
    }

    /// <summary>A service on the shared tiny reference model (never downloading) storing into this database, with <paramref name="extra"/> settings.</summary>
    public Dictionary<string, string> ServiceSettings(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["DATABASE_URL"] = Url,
        };
        foreach (var (key, value) in extra) settings[key] = value;
        return settings;
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(new EmbeddingService.Storage.StorageOptions { DatabaseUrl = Url }.ConnectionString());
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public async Task ExecuteAsync(string sql) => await ScalarAsync<object>(sql + "; SELECT 1");

    public async ValueTask DisposeAsync() => await AdminAsync($"DROP DATABASE IF EXISTS {Url[(Url.LastIndexOf('/') + 1)..]} WITH (FORCE)");

    private static async Task AdminAsync(string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(new EmbeddingService.Storage.StorageOptions { DatabaseUrl = ServerUrl }.ConnectionString());
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>A fact that needs the test PostgreSQL, skipped with the reason when it is not there (or ../shared is absent).</summary>
public sealed class DatabaseFactAttribute : FactAttribute
{
    public DatabaseFactAttribute()
    {
        if (TestDatabase.ServerUrl is null)
        {
            Skip = TestDatabase.MissingMessage;
        }
        else if (!SharedData.Available)
        {
            Skip = SharedData.MissingMessage;
        }
    }
}

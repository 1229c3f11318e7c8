using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.Support;
using Npgsql;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// DATABASE_READ_URL: a streaming standby of a primary of their own (scripts/postgres.sh pair). Searches and reads go to
/// the standby, an instance reads its own writes at once, searches go on while the primary is stopped (writes answer
/// 503, /health says read_only, readiness stays up), and an instance starts with only the standby reachable.
/// </summary>
public sealed class ReadReplicaTests
{
    private static float[] Vector(int seed) => [.. Enumerable.Range(0, 512).Select(j => (float)Math.Sin((seed + 1) * 0.37 * (j + 1)))];

    private static async Task<string[]> PairAsync(string action)
    {
        var (exitCode, output, error) = await Processes.RunAsync("bash", [Path.Combine(SharedData.RepositoryRoot, "scripts", "postgres.sh"), "pair", action], null);
        Assert.True(exitCode == 0, $"scripts/postgres.sh pair {action}: {error}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [DatabaseFact]
    public async Task Reads_go_on_from_the_standby_while_the_primary_is_down_and_an_instance_reads_its_own_writes()
    {
        var urls = await PairAsync("start");
        var name = $"replica_{Guid.NewGuid():N}";
        await ExecuteAsync(urls[0], $"CREATE DATABASE {name}");
        var (primary, standby) = (urls[0][..urls[0].LastIndexOf('/')] + "/" + name, urls[1][..urls[1].LastIndexOf('/')] + "/" + name);
        try
        {
            var settings = new Dictionary<string, string>
            {
                ["MODEL_DIR"] = SharedData.ReferenceModel,
                ["MODEL_AUTO_DOWNLOAD"] = "false",
                ["DATABASE_URL"] = primary,
                ["DATABASE_READ_URL"] = standby,
            };
            await using var factory = new ServiceFactory(settings);
            using var client = await factory.StartedClientAsync();
            await WaitForAsync(client, "\"database\":\"ok\"");
            Assert.Contains("\"database_replica\":\"ok\"", await client.GetStringAsync(new Uri("/health", UriKind.Relative)), StringComparison.Ordinal);

            // Each write is read back at once, by id and by search, though reads go to the standby.
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(new Uri($"/items/r{i}", UriKind.Relative), new { vector = Vector(i), metadata = new { n = i } })).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri($"/items/r{i}", UriKind.Relative))).StatusCode);
                Assert.Equal($"r{i}", await FirstHitAsync(client, Vector(i)));
            }

            // With the primary stopped, what answers is the standby.
            await PairAsync("stop-primary");
            Assert.Equal("r3", await FirstHitAsync(client, Vector(3)));
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/items/r3", UriKind.Relative))).StatusCode);
            var write = await client.PutAsJsonAsync(new Uri("/items/late", UriKind.Relative), new { vector = Vector(99) });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, write.StatusCode);
            Assert.NotNull(write.Headers.RetryAfter);
            Assert.Contains("\"database\":\"read_only\"", await client.GetStringAsync(new Uri("/health", UriKind.Relative)), StringComparison.Ordinal);
            var ready = await client.GetAsync(new Uri("/health/ready", UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Contains("Reads only", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            // An instance that starts now, with only the standby reachable, serves searches.
            await using (var second = new ServiceFactory(settings))
            {
                using var secondClient = await second.StartedClientAsync();
                await WaitForAsync(secondClient, "\"database\":\"read_only\"");
                Assert.Equal("r7", await FirstHitAsync(secondClient, Vector(7)));
            }

            await PairAsync("start-primary");
            HttpStatusCode status = 0;
            for (var i = 0; i < 100 && status != HttpStatusCode.Created; i++)
            {
                status = (await client.PutAsJsonAsync(new Uri("/items/late", UriKind.Relative), new { vector = Vector(99) })).StatusCode;
                if (status != HttpStatusCode.Created) await Task.Delay(100);
            }

            Assert.Equal(HttpStatusCode.Created, status);
            Assert.Equal("late", await FirstHitAsync(client, Vector(99)));
        }
        finally
        {
            await PairAsync("start-primary");
            await ExecuteAsync(urls[0], $"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        }
    }

    private static async Task<string?> FirstHitAsync(HttpClient client, float[] vector)
    {
        var response = await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { vector, k = 1 });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).FirstOrDefault();
    }

    private static async Task WaitForAsync(HttpClient client, string fragment)
    {
        for (var i = 0; i < 300 && !(await client.GetStringAsync(new Uri("/health", UriKind.Relative))).Contains(fragment, StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
        }

        Assert.Contains(fragment, await client.GetStringAsync(new Uri("/health", UriKind.Relative)), StringComparison.Ordinal);
    }

    private static async Task ExecuteAsync(string url, string sql) => await ScalarAsync<object>(url, sql + "; SELECT 1");

    private static async Task<T> ScalarAsync<T>(string url, string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(new EmbeddingService.Storage.StorageOptions { DatabaseUrl = url }.ConnectionString());
        await using var command = dataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}

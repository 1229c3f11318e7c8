using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Storage;

/// <summary>What storage does when the database goes away, and when the service is killed mid-write.</summary>
public sealed class StorageResilienceTests
{
    private static float[] Vector(int seed) => [.. Enumerable.Range(0, 512).Select(j => (float)Math.Sin((seed + 1) * 0.37 * (j + 1)))];

    [DatabaseFact]
    public async Task A_database_outage_leaves_embedding_up_answers_503_for_storage_and_recovers_without_a_restart()
    {
        await using var database = await TestDatabase.CreateAsync();
        var direct = new Uri(database.Url);
        await using var proxy = new TcpProxy(direct.Port);
        var throughProxy = $"postgresql://{direct.UserInfo}@127.0.0.1:{proxy.Port}{direct.AbsolutePath}";
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["DATABASE_URL"] = throughProxy,
        });
        using var client = await factory.StartedClientAsync();
        await WaitForAsync(client, "\"database\":\"ok\"");
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(new Uri("/items/a", UriKind.Relative), new { vector = Vector(1) })).StatusCode);

        await proxy.StopAsync();
        var search = await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { item_id = "a" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, search.StatusCode);
        Assert.NotNull(search.Headers.RetryAfter);
        Assert.Contains("database", await search.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.PutAsJsonAsync(new Uri("/items/b", UriKind.Relative), new { vector = Vector(2) })).StatusCode);
        var health = await client.GetAsync(new Uri("/health", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Contains("\"status\":\"healthy\"", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("\"database\":\"unavailable\"", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var image = ServiceFactory.Form(File.ReadAllBytes(SharedData.Image("chelsea.png")));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(new Uri("/embed-image", UriKind.Relative), image)).StatusCode);

        proxy.Start();
        await WaitForAsync(client, "\"database\":\"ok\"");
        HttpStatusCode status = 0;
        for (var i = 0; i < 100 && status != HttpStatusCode.OK; i++)
        {
            status = (await client.PostAsJsonAsync(new Uri("/search", UriKind.Relative), new { item_id = "a" })).StatusCode;
            if (status != HttpStatusCode.OK) await Task.Delay(100);
        }

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.Created, (await client.PutAsJsonAsync(new Uri("/items/b", UriKind.Relative), new { vector = Vector(2) })).StatusCode);
    }

    /// <summary>SIGKILL while writes stream in: every write that was answered 201 is in the database.</summary>
    [DatabaseFact]
    public async Task A_service_killed_mid_write_loses_no_acknowledged_write()
    {
        await using var database = await TestDatabase.CreateAsync();
        var port = ServiceProcess.FreePort();
        var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            ["DATABASE_URL"] = database.Url,
        });
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await WaitForAsync(client, "\"database\":\"ok\"");
        var writers = Enumerable.Range(0, 4).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; ; i++)
            {
                try
                {
                    var id = $"w{writer}-{i}";
                    var response = await client.PutAsJsonAsync(new Uri($"/items/{id}", UriKind.Relative), new { vector = Vector(i), metadata = new { writer } });
                    if (response.StatusCode == HttpStatusCode.Created) acknowledged.Add(id);
                }
                catch (HttpRequestException)
                {
                    return; // the service is gone
                }
            }
        })).ToList();

        var clock = Stopwatch.StartNew();
        while (acknowledged.Count < 300 && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(10);
        Process.GetProcessById(service.ProcessId).Kill(); // SIGKILL: no shutdown, no flush
        await Task.WhenAll(writers);
        await service.DisposeAsync();

        Assert.True(acknowledged.Count >= 300, $"only {acknowledged.Count} writes were acknowledged before the kill");
        var stored = await database.ScalarAsync<string[]>("SELECT array_agg(id) FROM items");
        Assert.Empty(acknowledged.Except(stored));
    }

    private static async Task WaitForAsync(HttpClient client, string health)
    {
        for (var i = 0; i < 300; i++)
        {
            try
            {
                if ((await client.GetStringAsync(new Uri("/health", UriKind.Relative))).Contains(health, StringComparison.Ordinal)) return;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"/health never said {health}.");
    }
}

using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Operations;

/// <summary>
/// Two instances behind a round-robin layer-4 balancer (a Kubernetes Service, here the test's own TCP proxy), one
/// client with one keep-alive connection: with connection lifetimes bounded both instances get its requests; without,
/// all of them land on the instance it first reached.
/// </summary>
[Collection(TinyModelGroup.Name)]
public sealed class ConnectionLifetimeTests(TinyModelFixture tiny)
{
    [Theory]
    [InlineData("20", 0.30)]
    [InlineData("0", 0.0)]
    public async Task One_keep_alive_client_reaches_every_instance_when_connections_are_bounded(string maxRequests, double leastShare)
    {
        var environment = new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory, ["MODEL_AUTO_DOWNLOAD"] = "false", ["LOG_LEVEL"] = "warning",
            ["MAX_CONNECTION_REQUESTS"] = maxRequests, ["MAX_CONNECTION_AGE_S"] = "0",
        };
        await using var first = await ServiceProcess.StartAsync(ServiceProcess.FreePort(), environment);
        await using var second = await ServiceProcess.StartAsync(ServiceProcess.FreePort(), environment);
        await using var balancer = new TcpProxy(first.Port, second.Port);

        // One connection at a time, kept alive, as a client library's pool to one host name does under light load.
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = new Uri($"http://127.0.0.1:{balancer.Port}") };
        for (var i = 0; i < 200; i++)
        {
            using var response = await client.GetAsync(new Uri("/health/live", UriKind.Relative));
            response.EnsureSuccessStatusCode();
        }

        double toFirst = balancer.BytesTo(0), toSecond = balancer.BytesTo(1);
        var share = Math.Min(toFirst, toSecond) / (toFirst + toSecond);
        if (leastShare > 0)
        {
            Assert.True(share >= leastShare, $"the instances got {toFirst:N0} and {toSecond:N0} bytes of requests");
        }
        else
        {
            Assert.True(share == 0, $"without a bound the connection should have stayed on one instance: {toFirst:N0} and {toSecond:N0} bytes");
        }

        Assert.Empty(first.Failures);
        Assert.Empty(second.Failures);
    }
}

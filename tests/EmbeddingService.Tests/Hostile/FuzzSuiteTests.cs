using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using Fuzz;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Hostile;

/// <summary>
/// The fuzz suite: deterministic hostile requests (mutated real images, images crafted against every decoder,
/// broken JSON, broken multipart and HTTP framing) to every route that takes a body, against the service as users
/// run it, over raw TCP.
/// </summary>
public sealed class FuzzSuiteTests(ITestOutputHelper output)
{
    private const int Cases = 4000;

    [SharedDataFact]
    public async Task Hostile_requests_get_4xx_with_a_detail_never_5xx_and_memory_stays_bounded()
    {
        var port = ServiceProcess.FreePort();
        // With the test PostgreSQL the storage routes run for real; without it they answer 503, which is fine too.
        await using var database = TestDatabase.ServerUrl is null ? null : await TestDatabase.CreateAsync();
        var settings = new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
        };
        if (database is not null) settings["DATABASE_URL"] = database.Url;
        await using var service = await ServiceProcess.StartAsync(port, settings);
        var images = HostileCases.LoadImages(Path.Combine(SharedData.Root, "images"));
        var generator = new HostileCases(images, HostileCases.Routes);
        await using var memory = new ResidentMemory(service.ProcessId);

        var report = await FuzzRunner.RunAsync("127.0.0.1", port, generator.Generate(seed: 1, Cases), concurrency: 4, TimeSpan.FromSeconds(60));
        var end = memory.Now();
        output.WriteLine(report.Summary());
        output.WriteLine($"RSS MiB: start {memory.Start:F0}, peak {memory.Peak:F0}, end {end:F0}");

        Assert.Equal(Cases, report.Count);
        if (database is not null)
        {
            // Storage really ran: valid uploads among the cases were stored.
            Assert.Contains(report.Outcomes, o => o.Case.Name.StartsWith("/items/", StringComparison.Ordinal) && o.Status is 200 or 201);
        }

        Assert.True(report.ServerErrors == 0 && report.NoAnswer == 0, report.Summary());
        Assert.True(service.Failures.Count == 0, string.Join('\n', service.Failures.Take(5)));
        // Every family was exercised, and the service also accepted what was still a valid image.
        Assert.Equal(["crafted", "framing", "json", "mutated"], report.Outcomes.Select(o => o.Case.Family).Distinct().Order(StringComparer.Ordinal));
        Assert.All(HostileCases.Routes, route => Assert.Contains(report.Outcomes, o => o.Case.Name.StartsWith(route.Path + " ", StringComparison.Ordinal)));
        Assert.Contains(report.Outcomes, o => o.Status == 200);
        // The service's own refusals of images say why (Kestrel's refusals of broken HTTP carry no body).
        Assert.All(report.Outcomes.Where(o => o.Case.Family != "framing" && o.Status is >= 400 and < 500), o => Assert.False(string.IsNullOrEmpty(o.Detail), $"{o.Case.Name}: {o.Status} in {o.Milliseconds:F0} ms, {o.Raw}"));
        // What requests hold is bounded by the upload and decode budgets (256 MiB each by default); whatever the
        // traffic was, no more than that may stay behind.
        Assert.True(end - memory.Start <= 512, $"RSS grew from {memory.Start:F0} to {end:F0} MiB (peak {memory.Peak:F0})");
    }

    [SharedDataFact]
    public async Task Credentials_in_any_shape_are_accepted_or_refused_with_401_never_a_5xx()
    {
        const string Key = "fuzz-key-7c1d0e";
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            ["API_KEYS"] = Key + ",another-key",
        });
        var image = File.ReadAllBytes(SharedData.Image("coffee.png"));
        var report = await FuzzRunner.RunAsync("127.0.0.1", port, CredentialCases.Generate(HostileCases.Routes, image, Key, seed: 1, 600), concurrency: 4, TimeSpan.FromSeconds(60));
        output.WriteLine(report.Summary());

        Assert.True(report.ServerErrors == 0 && report.NoAnswer == 0, report.Summary());
        Assert.True(service.Failures.Count == 0, string.Join('\n', service.Failures.Take(5)));
        foreach (var outcome in report.Outcomes)
        {
            if (outcome.Case.Name.Contains($" {CredentialCases.Pass} ", StringComparison.Ordinal))
            {
                // Past the key, the route answers as without keys (storage is off here: 503 for its routes).
                Assert.True(outcome.Status is not 401 and not 0, $"{outcome.Case.Name}: {outcome.Status}");
            }
            else
            {
                // Refused by the key check, or by Kestrel before it (a header it will not parse, or too large).
                Assert.True(outcome.Status is 401 or 400 or 431, $"{outcome.Case.Name}: {outcome.Status} {outcome.Detail}");
                if (outcome.Status == 401) Assert.False(string.IsNullOrEmpty(outcome.Detail), outcome.Case.Name);
            }
        }

        Assert.Contains(report.Outcomes, o => o.Status == 200);
        Assert.Contains(report.Outcomes, o => o.Status == 401);
    }

    [Fact]
    public void The_same_seed_gives_the_same_requests()
    {
        byte[] jpeg = [0xFF, 0xD8, 0xFF, 0xE0, .. new byte[600]];
        byte[] png = [0x89, (byte)'P', (byte)'N', (byte)'G', .. new byte[600]];
        var generator = new HostileCases([("a.jpg", jpeg), ("b.png", png)], HostileCases.Routes);
        var first = generator.Generate(seed: 3, 200).ToList();
        var second = generator.Generate(seed: 3, 200).ToList();
        Assert.Equal(first.Select(c => c.Name), second.Select(c => c.Name));
        Assert.All(first.Zip(second), pair => Assert.Equal(pair.First.Request, pair.Second.Request));
        Assert.NotEqual(first.Select(c => c.Name), generator.Generate(seed: 4, 200).Select(c => c.Name));
    }
}

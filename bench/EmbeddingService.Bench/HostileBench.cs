using Fuzz;

namespace EmbeddingService.Bench;

/// <summary>Memory under hostile traffic, and normal latency while slowloris clients stall uploads.</summary>
internal static class HostileBench
{
    public static async Task RunAsync(BenchOptions options, string modelDirectory, byte[] image, IReadOnlyDictionary<string, string> settings, Report report)
    {
        // A short upload deadline, so the stalled uploads below meet it (the path that once logged an error per client).
        const int UploadTimeoutSeconds = 4;
        await using var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory,
            new Dictionary<string, string>(settings) { ["UPLOAD_TIMEOUT_S"] = UploadTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        // Warmed up by normal traffic, so the baseline holds what serving normal requests needs.
        await HttpLoad.RunAsync(service.Address, image, 8, double.MaxValue, 500);
        var warmed = service.ResidentMiB().Current;
        var generator = new HostileCases(HostileCases.LoadImages(Path.Combine(options.SharedDirectory, "images")), HostileCases.Routes);
        await using var memory = new ResidentMemory(service.ProcessId);
        var started = DateTime.UtcNow;
        var fuzz = await FuzzRunner.RunAsync(service.Address.Host, service.Address.Port, generator.Generate(1, options.HostileRequests), 4, TimeSpan.FromSeconds(90));
        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        var end = memory.Now();
        report.Add($"hostile requests (tools/Fuzz, seed 1, 4 at once), {fuzz.Count:N0}", Report.F(fuzz.Count / seconds), "", "", "",
            $"5xx: {fuzz.ServerErrors}, no answer: {fuzz.NoAnswer}; {string.Join(", ", fuzz.ByStatus.Select(s => $"{(s.Key == 0 ? "hung up" : s.Key)} x {s.Value}"))}; " +
            $"RSS MiB warmed {Report.F(warmed, 0)}, peak {Report.F(memory.Peak, 0)}, end {Report.F(end, 0)} ({(end - warmed >= 0 ? "+" : "")}{Report.F(end - warmed, 0)})");

        var quiet = await HttpLoad.RunAsync(service.Address, image, 1, options.Seconds / 2);
        LoadResult stalledRun;
        string[] answers;
        await using (var stalled = await StalledUploads.OpenAsync(service.Address.Port, 80))
        {
            stalledRun = await HttpLoad.RunAsync(service.Address, image, 1, options.Seconds / 2);
            answers = await stalled.AnswersAsync(TimeSpan.FromSeconds(UploadTimeoutSeconds + 20));
        }

        await Task.Delay(500);
        report.Add($"80 stalled uploads, UPLOAD_TIMEOUT_S={UploadTimeoutSeconds}", $"{answers.Count(a => a.StartsWith("HTTP/1.1 408", StringComparison.Ordinal))} x 408", "", "", "",
            $"other answers: {answers.Count(a => !a.StartsWith("HTTP/1.1 408", StringComparison.Ordinal))}; service log lines at fail:/crit: during the whole run: {service.FailureLines}");

        report.Add("640x480 JPEG, 1 client, alone / while 80 uploads stall", $"{Report.F(quiet.ImagesPerSecond)} / {Report.F(stalledRun.ImagesPerSecond)}",
            $"{Report.F(quiet.Percentile(0.5))} / {Report.F(stalledRun.Percentile(0.5))}", "", "",
            $"{quiet.FailureSummary} / {stalledRun.FailureSummary}; p50 ratio {Report.F(stalledRun.Percentile(0.5) / quiet.Percentile(0.5), 2)}");
    }
}

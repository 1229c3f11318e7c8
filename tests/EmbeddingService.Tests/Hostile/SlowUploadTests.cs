using System.Diagnostics;
using System.Net;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using Fuzz;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Hostile;

/// <summary>Slow uploads hold no place in the inference queue: stalled connections cannot lock anyone out.</summary>
public sealed class SlowUploadTests(ITestOutputHelper output)
{
    private const int Stalled = 80;

    [SharedDataFact]
    public async Task Eighty_stalled_uploads_do_not_lock_out_normal_requests_and_then_get_408()
    {
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            // Fewer queue places than stalled connections: before, each stalled upload held one.
            ["MAX_QUEUE_DEPTH"] = "16",
            ["UPLOAD_TIMEOUT_S"] = "6",
        });
        var image = File.ReadAllBytes(SharedData.Image("chelsea.png"));
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var before = await TimeRequestsAsync(client, image, 10);

        await using (var stalled = await StalledUploads.OpenAsync(port, Stalled))
        {
            var during = await TimeRequestsAsync(client, image, 20);
            output.WriteLine($"normal request p50: {Median(before):F1} ms before, {Median(during):F1} ms with {Stalled} uploads stalled");

            // The stalled uploads miss their deadline: each gets a 408 that says so.
            var answers = await stalled.AnswersAsync(TimeSpan.FromSeconds(20));
            Assert.All(answers, a => Assert.StartsWith("HTTP/1.1 408", a, StringComparison.Ordinal));
            Assert.Contains(answers, a => a.Contains("UPLOAD_TIMEOUT_S", StringComparison.Ordinal) || a.Contains("UPLOAD_MIN_BYTES_PER_S", StringComparison.Ordinal));
        }

        Assert.Empty(service.Failures);
    }

    /// <summary>
    /// The upload deadline (UPLOAD_TIMEOUT_S) passing before Kestrel's minimum data rate notices: each stalled client
    /// gets its 408, and the log has no error for it (the client's slowness is not the service's fault).
    /// </summary>
    [Fact]
    public async Task Uploads_that_miss_the_deadline_get_408_and_write_no_error_to_the_log()
    {
        using var model = new TempDirectory("slow-model");
        SyntheticModel.ModelDirectoryWriter.Write(SyntheticModel.ClipArchitecture.Tiny, 2, model.Path);
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = model.Path,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "info",
            ["UPLOAD_TIMEOUT_S"] = "2",
        });
        string[] answers;
        await using (var stalled = await StalledUploads.OpenAsync(port, 12))
        {
            answers = await stalled.AnswersAsync(TimeSpan.FromSeconds(15));
        }

        // Kestrel logs a failed drain after the answer is sent: give it the moment it takes.
        await Task.Delay(500);
        Assert.All(answers, a => Assert.StartsWith("HTTP/1.1 408", a, StringComparison.Ordinal));
        Assert.All(answers, a => Assert.Contains("UPLOAD_TIMEOUT_S", a, StringComparison.Ordinal));
        Assert.True(service.Failures.Count == 0, string.Join('\n', service.Failures));
        Assert.DoesNotContain("Exception", service.Log, StringComparison.Ordinal);
    }

    /// <summary>Sends <paramref name="count"/> normal requests one after another; every one must succeed.</summary>
    private static async Task<List<double>> TimeRequestsAsync(HttpClient client, byte[] image, int count)
    {
        var latencies = new List<double>();
        for (var i = 0; i < count; i++)
        {
            using var form = ServiceFactory.Form(image, fileName: "chelsea.png");
            var clock = Stopwatch.StartNew();
            using var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), form);
            latencies.Add(clock.Elapsed.TotalMilliseconds);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        return latencies;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}

using EmbeddingService.Download;
using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace EmbeddingService.Tests.Download;

[Collection(TinyModelGroup.Name)]
public sealed class HubFileDownloaderTests(TinyModelFixture tiny)
{
    private const string Repository = "Xenova/clip-vit-base-patch32";

    [Fact]
    public async Task Downloads_a_complete_model_that_loads_sending_the_token_only_to_the_hub()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        using var target = new TempDirectory();
        await Downloader(hub, token: "hf_secret").DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None);

        AssertSameFiles(target.Path);
        using var model = Models.Load(target.Path);
        Assert.Equal(512, model.Vision.Dimension);
        Assert.All(hub.Requests.Where(r => r.Path.StartsWith("resolve/", StringComparison.Ordinal)), r => Assert.Equal("Bearer hf_secret", r.Authorization));
        Assert.All(hub.Requests.Where(r => r.Path.StartsWith("blobs/", StringComparison.Ordinal)), r => Assert.Null(r.Authorization));
        Assert.Empty(Directory.EnumerateFiles(target.Path, "*.incomplete", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Fetches_only_the_files_of_the_configured_variant()
    {
        await using var hub = await StartHub(ModelVariant.Quantized);
        using var target = new TempDirectory();
        await Downloader(hub).DownloadAsync(new ModelFiles(target.Path, ModelVariant.Quantized), CancellationToken.None);

        Assert.True(File.Exists(Path.Combine(target.Path, "onnx", "vision_model_quantized.onnx")));
        Assert.DoesNotContain(hub.Requests, r => r.Path.EndsWith("/vision_model.onnx", StringComparison.Ordinal));
        Assert.Equal(7, hub.Requests.Count(r => r.Path.StartsWith("resolve/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_404_fails_at_once_with_a_message_saying_how_to_provide_a_model()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        hub.Missing.Add("onnx/text_model.onnx");
        using var target = new TempDirectory();
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() =>
            Downloader(hub).DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None));

        Assert.Contains("404", error.Message, StringComparison.Ordinal);
        Assert.Contains("has no onnx/text_model.onnx", error.Message, StringComparison.Ordinal);
        Assert.Contains("MODEL_DIR", error.Message, StringComparison.Ordinal);
        Assert.Contains("tools/SyntheticModel", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, hub.RequestsFor("resolve/onnx/text_model.onnx"));
        Assert.False(File.Exists(Path.Combine(target.Path, "onnx", "text_model.onnx")));
    }

    [Fact]
    public async Task A_server_error_is_retried_and_then_succeeds()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        hub.FailuresLeft["onnx/vision_model.onnx"] = 2;
        using var target = new TempDirectory();
        await Downloader(hub).DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None);

        AssertSameFiles(target.Path);
        Assert.Equal(3, hub.RequestsFor("blobs/onnx/vision_model.onnx"));
    }

    [Fact]
    public async Task A_connection_cut_mid_file_is_resumed_with_range()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        hub.CutsLeft["onnx/text_model.onnx"] = 1;
        using var target = new TempDirectory();
        await Downloader(hub).DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None);

        AssertSameFiles(target.Path);
        var blobRequests = hub.Requests.Where(r => r.Path == "blobs/onnx/text_model.onnx").ToList();
        Assert.Equal(2, blobRequests.Count);
        Assert.Null(blobRequests[0].Range);
        Assert.Matches("^bytes=[1-9][0-9]*-$", blobRequests[1].Range);
    }

    [Fact]
    public async Task A_connection_that_stalls_mid_file_is_dropped_and_resumed()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        hub.StallsLeft["onnx/text_model.onnx"] = 1;
        using var target = new TempDirectory();
        await Downloader(hub).DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None);

        AssertSameFiles(target.Path);
        var blobRequests = hub.Requests.Where(r => r.Path == "blobs/onnx/text_model.onnx").ToList();
        Assert.Equal(2, blobRequests.Count);
        Assert.Matches("^bytes=[1-9][0-9]*-$", blobRequests[1].Range);
    }

    [Fact]
    public async Task A_wrong_hash_is_rejected_retried_and_then_fails_clearly_leaving_no_file()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        hub.WrongHash["onnx/vision_model.onnx"] = true;
        using var target = new TempDirectory();
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() =>
            Downloader(hub).DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None));

        Assert.Contains("SHA-256 mismatch", error.Message, StringComparison.Ordinal);
        Assert.Contains("gave up after 3 attempts", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, hub.RequestsFor("blobs/onnx/vision_model.onnx"));
        Assert.False(File.Exists(Path.Combine(target.Path, "onnx", "vision_model.onnx")));
        Assert.False(File.Exists(Path.Combine(target.Path, "onnx", "vision_model.onnx.incomplete")));
        Assert.NotEmpty(new ModelFiles(target.Path, ModelVariant.Fp32).Missing());
    }

    [Fact]
    public async Task A_target_that_cannot_be_written_is_a_clear_error()
    {
        await using var hub = await StartHub(ModelVariant.Fp32);
        using var scratch = new TempDirectory();
        var blocker = Path.Combine(scratch.Path, "a-file");
        await File.WriteAllTextAsync(blocker, "not a directory");
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() =>
            Downloader(hub).DownloadAsync(new ModelFiles(Path.Combine(blocker, "model"), ModelVariant.Fp32), CancellationToken.None));

        Assert.Contains("Cannot write", error.Message, StringComparison.Ordinal);
        Assert.Contains("MODEL_DIR", error.Message, StringComparison.Ordinal);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public async Task An_unreachable_hub_fails_with_the_offline_advice()
    {
        using var target = new TempDirectory();
        var options = new ModelOptions { HubEndpoint = "http://127.0.0.1:9", DownloadAttempts = 2, DownloadRetryDelayMs = 1 };
        var downloader = new HubFileDownloader(HubFileDownloader.CreateClient(), options, NullLogger<HubFileDownloader>.Instance);
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => downloader.DownloadAsync(new ModelFiles(target.Path, ModelVariant.Fp32), CancellationToken.None));
        Assert.Contains("Offline?", error.Message, StringComparison.Ordinal);
    }

    private async Task<FakeHub> StartHub(ModelVariant variant)
    {
        var source = new ModelFiles(tiny.Directory, ModelVariant.Fp32);
        var served = new ModelFiles("/", variant);
        var files = source.RelativePaths.Zip(served.RelativePaths).ToDictionary(p => p.Second, p => File.ReadAllBytes(source.PathOf(p.First)));
        return await FakeHub.StartAsync(Repository, "main", files);
    }

    private static HubFileDownloader Downloader(FakeHub hub, string? token = null) => new(
        HubFileDownloader.CreateClient(),
        new ModelOptions { HubEndpoint = hub.Endpoint, Repository = Repository, Revision = "main", HubToken = token, DownloadAttempts = 3, DownloadRetryDelayMs = 1, DownloadStallTimeoutSeconds = 1 },
        NullLogger<HubFileDownloader>.Instance);

    private void AssertSameFiles(string downloaded)
    {
        foreach (var relative in new ModelFiles(tiny.Directory, ModelVariant.Fp32).RelativePaths)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(tiny.Directory, relative)), File.ReadAllBytes(Path.Combine(downloaded, relative)));
        }
    }
}

using EmbeddingService.Model;
using EmbeddingService.Tests.Download;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.EndToEnd;

/// <summary><c>EmbeddingService download-model --dir DIR</c> as a user runs it.</summary>
[Collection(TinyModelGroup.Name)]
public sealed class DownloadModelCommandTests(TinyModelFixture tiny)
{
    [Fact]
    public async Task Downloads_the_model_into_the_given_directory_and_exits_0()
    {
        var source = new ModelFiles(tiny.Directory, ModelVariant.Fp32);
        await using var hub = await FakeHub.StartAsync("Xenova/clip-vit-base-patch32", "main",
            source.RelativePaths.ToDictionary(p => p, p => File.ReadAllBytes(source.PathOf(p))));
        using var target = new TempDirectory();

        var (exitCode, output) = await RunAsync(["download-model", "--dir", target.Path], ("HF_ENDPOINT", hub.Endpoint));

        Assert.True(exitCode == 0, output);
        Assert.Contains($"Model ready in {target.Path}", output, StringComparison.Ordinal);
        Assert.Empty(new ModelFiles(target.Path, ModelVariant.Fp32).Missing());
        using var model = Models.Load(target.Path);
    }

    [Fact]
    public async Task Offline_it_exits_1_saying_how_to_provide_a_model()
    {
        using var target = new TempDirectory();
        var (exitCode, output) = await RunAsync(["download-model", "--dir", target.Path],
            ("HF_ENDPOINT", "http://127.0.0.1:9"), ("DOWNLOAD_ATTEMPTS", "1"));

        Assert.Equal(1, exitCode);
        Assert.Contains("Could not download the model", output, StringComparison.Ordinal);
        Assert.Contains("MODEL_DIR", output, StringComparison.Ordinal);
        Assert.Contains("tools/SyntheticModel", output, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string[] arguments, params (string Key, string Value)[] environment)
    {
        var (exitCode, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), .. arguments], null, environment);
        return (exitCode, output + error);
    }
}

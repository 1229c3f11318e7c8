using System.Text.RegularExpressions;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Operations;

/// <summary>
/// The GPU build (-p:Gpu=true, Microsoft.ML.OnnxRuntime.Gpu.Linux) on a machine without CUDA: it starts, serves on the
/// CPU, says "cpu" and logs one line naming the library that is missing. The CPU build says it has no CUDA provider.
/// </summary>
[Collection(TinyModelGroup.Name)]
public sealed partial class GpuBuildTests(TinyModelFixture tiny, ITestOutputHelper output)
{
    [Fact]
    public async Task The_gpu_build_falls_back_to_the_cpu_with_one_line_naming_the_missing_library()
    {
        using var app = new TempDirectory("gpu-build");
        var (exitCode, stdout, stderr) = await Processes.RunAsync("dotnet",
            ["publish", Path.Combine("src", "EmbeddingService"), "-c", "Release", "-p:Gpu=true", "-o", app.Path, "--nologo", "-v", "quiet"],
            SharedData.RepositoryRoot);
        Assert.True(exitCode == 0, stdout + stderr);
        Assert.True(File.Exists(Path.Combine(app.Path, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so")), "no CUDA provider in the GPU build");
        // Managed and native parts are one version: the GPU package's, as Directory.Packages.props pins it.
        var pinned = System.Xml.Linq.XDocument.Load(Path.Combine(SharedData.RepositoryRoot, "Directory.Packages.props")).Descendants("PackageVersion")
            .Single(p => (string?)p.Attribute("Include") == "Microsoft.ML.OnnxRuntime.Gpu.Linux").Attribute("Version")!.Value;
        Assert.StartsWith(pinned, System.Diagnostics.FileVersionInfo.GetVersionInfo(Path.Combine(app.Path, "Microsoft.ML.OnnxRuntime.dll")).ProductVersion, StringComparison.Ordinal);

        // The libraries the fallback checks for are the ones this package's CUDA provider links, and the Dockerfile's
        // GPU stage is the CUDA runtime they come from.
        var (_, elf, _) = await Processes.RunAsync("readelf", ["-d", Path.Combine(app.Path, "runtimes", "linux-x64", "native", "libonnxruntime_providers_cuda.so")], app.Path);
        var needed = NeededLine().Matches(elf).Select(m => m.Groups[1].Value).Where(l => l.StartsWith("libcu", StringComparison.Ordinal)).ToList();
        Assert.Contains("libcudart.so.13", needed);
        var source = await File.ReadAllTextAsync(Path.Combine(SharedData.RepositoryRoot, "src", "EmbeddingService", "Inference", "OrtSessionFactory.cs"));
        Assert.All(needed, library => Assert.Contains($"\"{library}\"", source, StringComparison.Ordinal));
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(SharedData.RepositoryRoot, "Dockerfile"));
        Assert.Matches(@"FROM nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-\S+ AS gpu", dockerfile);
        Assert.Contains("RUN dotnet publish src/EmbeddingService -c Release -p:Gpu=true", dockerfile, StringComparison.Ordinal);

        var log = await HealthAndLogAsync(Path.Combine(app.Path, "EmbeddingService.dll"));
        var lines = CudaLine().Matches(log);
        output.WriteLine(string.Join('\n', lines.Select(m => m.Value)));
        Assert.Single(lines);
        Assert.Matches(@"lib[a-zA-Z]+\.so\.\d+ cannot be loaded", lines[0].Value);
        Assert.DoesNotContain("E:onnxruntime", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cpu_build_asked_for_a_gpu_says_it_has_no_cuda_provider_once()
    {
        var log = await HealthAndLogAsync(null);
        var lines = CudaLine().Matches(log);
        Assert.Single(lines);
        Assert.Contains("this build has no CUDA provider", lines[0].Value, StringComparison.Ordinal);
    }

    private async Task<string> HealthAndLogAsync(string? assembly)
    {
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = tiny.Directory,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["CUDA_VISIBLE_DEVICES"] = "0",
        }, assembly);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (var i = 0; i < 300 && !(await client.GetStringAsync(new Uri("/health", UriKind.Relative))).Contains("\"model_loaded\":true", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
        }

        Assert.Equal("{\"status\":\"healthy\",\"model_loaded\":true,\"device\":\"cpu\"}", await client.GetStringAsync(new Uri("/health", UriKind.Relative)));
        Assert.Contains("\"embedding\"", await (await client.PostAsync(new Uri("/embed-text", UriKind.Relative),
            new StringContent("{\"text\":\"a red shoe\"}", System.Text.Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync(), StringComparison.Ordinal);
        return service.Log;
    }

    [GeneratedRegex(@"\(NEEDED\)\s+Shared library: \[([^\]]+)\]")]
    private static partial Regex NeededLine();

    [GeneratedRegex("CUDA_VISIBLE_DEVICES=0 asks for a GPU, but [^\n]*")]
    private static partial Regex CudaLine();
}

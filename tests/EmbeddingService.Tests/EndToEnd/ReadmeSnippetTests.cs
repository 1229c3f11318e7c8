using System.Text.Json;
using System.Text.RegularExpressions;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.EndToEnd;

/// <summary>One service process on port 8000, where the guide's snippets (docs/api.md) point, shared by these tests.</summary>
public sealed class ReadmeServiceFixture : IAsyncLifetime
{
    public ServiceProcess? Service { get; private set; }

    public async Task InitializeAsync()
    {
        if (!SharedData.Available) return;
        Service = await ServiceProcess.StartAsync(8000, new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["LOG_LEVEL"] = "warning",
            ["CUDA_VISIBLE_DEVICES"] = "0",
        });
    }

    public async Task DisposeAsync()
    {
        if (Service is not null) await Service.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ReadmeServiceGroup : ICollectionFixture<ReadmeServiceFixture>
{
    public const string Name = "service on port 8000";
}

[Collection(ReadmeServiceGroup.Name)]
public sealed partial class ReadmeSnippetTests(ReadmeServiceFixture fixture) : IDisposable
{
    private readonly TempDirectory _workDirectory = CreateWorkDirectory();

    [SharedDataFact]
    public async Task The_api_pages_curl_commands_run_unchanged()
    {
        var commands = CodeBlocks("bash").SelectMany(b => b.Split('\n')).Where(l => l.StartsWith("curl ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, commands.Count);
        Assert.Equal("{\"status\":\"healthy\",\"model_loaded\":true,\"device\":\"cpu\"}", await RunAsync("bash", ["-c", commands[0]]));
        // /embed-image and /embed-text answer one embedding, /embed-images one per file.
        foreach (var (command, vectors) in new[] { (commands[1], 0), (commands[2], 0), (commands[3], 2) })
        {
            using var answer = JsonDocument.Parse(await RunAsync("bash", ["-c", command]));
            Assert.Equal("CLIP-ViT-B/32", answer.RootElement.GetProperty("model").GetString());
            var embeddings = vectors == 0 ? [answer.RootElement.GetProperty("embedding")] : answer.RootElement.GetProperty("embeddings").EnumerateArray().ToList();
            Assert.Equal(Math.Max(vectors, 1), embeddings.Count);
            Assert.All(embeddings, e => Assert.Equal(512, e.GetArrayLength()));
        }
    }

    [SharedDataFact]
    public async Task The_api_pages_python_requests_snippet_runs_unchanged()
    {
        var script = Path.Combine(_workDirectory.Path, "client.py");
        await File.WriteAllTextAsync(script, Assert.Single(CodeBlocks("python")));
        // Debian's interpreter, where python3-requests is installed, whatever python3 PATH finds first.
        Assert.Equal("512", await RunAsync("/usr/bin/python3", [script]));
    }

    [SharedDataFact]
    public async Task The_api_pages_javascript_axios_snippet_runs_unchanged()
    {
        var script = Path.Combine(_workDirectory.Path, "client.js");
        await File.WriteAllTextAsync(script, Assert.Single(CodeBlocks("javascript")));
        var modules = Path.Combine(SharedData.RepositoryRoot, "tests", "e2e-js", "node_modules");
        Assert.True(Directory.Exists(modules), "run scripts/test.sh, which installs tests/e2e-js (npm ci)");
        Assert.Equal("512", await RunAsync("node", [script], ("NODE_PATH", modules)));
    }

    [SharedDataFact]
    public void Log_level_and_cuda_request_are_honoured_and_the_synthetic_model_is_announced()
    {
        var log = fixture.Service!.Log;
        Assert.Contains("CUDA_VISIBLE_DEVICES=0 asks for a GPU", log, StringComparison.Ordinal);
        Assert.Contains("SYNTHETIC", log, StringComparison.Ordinal);
        Assert.DoesNotContain(" info: ", log, StringComparison.Ordinal);
    }

    public void Dispose() => _workDirectory.Dispose();

    private static TempDirectory CreateWorkDirectory()
    {
        var directory = new TempDirectory("readme");
        if (SharedData.Available)
        {
            File.Copy(SharedData.Image("coffee-progressive.jpg"), Path.Combine(directory.Path, "product.jpg"));
            File.Copy(SharedData.Image("chelsea-exif6.jpg"), Path.Combine(directory.Path, "front.jpg"));
            File.Copy(SharedData.Image("coffee-cmyk.jpg"), Path.Combine(directory.Path, "back.jpg"));
        }

        return directory;
    }

    private static List<string> CodeBlocks(string language)
    {
        // The examples live in the guide's API page since the README became a map.
        var page = File.ReadAllText(Path.Combine(SharedData.RepositoryRoot, "docs", "api.md"));
        return [.. FencedBlock().Matches(page).Where(m => m.Groups[1].Value == language).Select(m => m.Groups[2].Value)];
    }

    private async Task<string> RunAsync(string program, string[] arguments, params (string Key, string Value)[] environment)
    {
        var (exitCode, output, error) = await Processes.RunAsync(program, arguments, _workDirectory.Path, environment);
        Assert.True(exitCode == 0, $"{program} {string.Join(' ', arguments)} exited with {exitCode}: {error}");
        return output.Trim();
    }

    [GeneratedRegex("```(\\w+)\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FencedBlock();
}

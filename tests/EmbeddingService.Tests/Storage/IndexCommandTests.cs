using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Storage;

/// <summary>The bulk indexer as users run it: a process, a folder, a real PostgreSQL.</summary>
public sealed class IndexCommandTests
{
    [DatabaseFact]
    public async Task A_folder_is_indexed_a_corrupt_file_is_named_and_a_rerun_skips_what_is_unchanged()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var folder = new TempDirectory("catalog");
        Directory.CreateDirectory(folder.Combine("bags"));
        foreach (var name in new[] { "chelsea.png", "coffee.png", "astronaut-lossless.webp" }) File.Copy(SharedData.Image(name), folder.Combine(name));
        File.Copy(SharedData.Image("chelsea-exif6.jpg"), folder.Combine("bags", "tote.jpg"));
        File.Copy(SharedData.Image("truncated.jpg"), folder.Combine("broken.jpg"));
        File.WriteAllText(folder.Combine("notes.txt"), "not an image, not looked at");
        var metadata = folder.Combine("catalog.jsonl");
        File.WriteAllLines(metadata, ["{\"id\": \"bags/tote.jpg\", \"category\": \"bags\"}", "{\"id\": \"coffee.png\", \"category\": \"drinks\"}"]);

        Task<(int ExitCode, string Output, string Error)> Index() => Processes.RunAsync("dotnet",
            [Processes.ServiceAssembly(), "index", folder.Path, "--metadata", metadata, "--id", "path", "--batch", "4"], null,
            ("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false"));

        var (exitCode, output, error) = await Index();
        Assert.True(exitCode == 1, $"exit {exitCode}\n{output}\n{error}");
        Assert.Contains("indexed 4 (4 new, 0 replaced), skipped 0 unchanged, failed 1", output, StringComparison.Ordinal);
        Assert.Contains("broken.jpg: The JPEG image is corrupt", output, StringComparison.Ordinal);
        Assert.Equal(4L, await database.ScalarAsync<long>("SELECT count(*) FROM items WHERE thumbnail IS NOT NULL"));
        Assert.Equal("bags", await database.ScalarAsync<string>("SELECT metadata->>'category' FROM items WHERE id = 'bags/tote.jpg'"));

        var (_, again, _) = await Index();
        Assert.Contains("indexed 0 (0 new, 0 replaced), skipped 4 unchanged, failed 1", again, StringComparison.Ordinal);

        // A changed file is indexed again; the others are still skipped.
        File.Copy(SharedData.Image("camera.png"), folder.Combine("coffee.png"), overwrite: true);
        var (_, changed, _) = await Index();
        Assert.Contains("indexed 1 (0 new, 1 replaced), skipped 3 unchanged", changed, StringComparison.Ordinal);
    }
}

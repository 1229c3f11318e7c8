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
        Assert.Equal(4L, await database.ScalarAsync<long>("SELECT count(*) FROM item_thumbnails"));
        Assert.Equal("bags", await database.ScalarAsync<string>("SELECT metadata->>'category' FROM items WHERE id = 'bags/tote.jpg'"));

        var (_, again, _) = await Index();
        Assert.Contains("indexed 0 (0 new, 0 replaced), skipped 4 unchanged, failed 1", again, StringComparison.Ordinal);

        // A changed file is indexed again; the others are still skipped.
        File.Copy(SharedData.Image("camera.png"), folder.Combine("coffee.png"), overwrite: true);
        var (_, changed, _) = await Index();
        Assert.Contains("indexed 1 (0 new, 1 replaced), skipped 3 unchanged", changed, StringComparison.Ordinal);
    }

    /// <summary>Ctrl-C (SIGINT) mid-run: the run stops with 130, what it wrote stays, and the same command finishes the rest.</summary>
    [DatabaseFact]
    public async Task Ctrl_C_stops_cleanly_and_a_rerun_finishes_the_rest()
    {
        await using var database = await TestDatabase.CreateAsync();
        using var folder = Catalog();
        using var process = StartIndexer(folder.Path, database.Url);
        var output = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();

        // Once the first batches are written, Ctrl-C.
        for (var i = 0; i < 600 && await RowsAsync(database) == 0; i++) await Task.Delay(20);
        await Processes.RunAsync("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);

        var written = await database.ScalarAsync<long>("SELECT count(*) FROM items");
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}\n{await output}");
        Assert.Contains("stopped by Ctrl-C", await output, StringComparison.Ordinal);
        Assert.Contains($"indexed {written} ", await output, StringComparison.Ordinal);
        Assert.InRange(written, 1, 399);

        var (exitCode, rest, _) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", folder.Path], null,
            ("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false"));
        Assert.Equal(0, exitCode);
        Assert.Contains($"indexed {400 - written} ({400 - written} new, 0 replaced), skipped {written} unchanged, failed 0", rest, StringComparison.Ordinal);
    }

    /// <summary>The database goes away mid-run: the indexer stops every producer and exits non-zero with the reason, keeping what it wrote.</summary>
    [DatabaseFact]
    public async Task A_database_cut_mid_run_exits_non_zero_within_seconds_and_a_rerun_finishes_the_rest()
    {
        await using var database = await TestDatabase.CreateAsync();
        var direct = new Uri(database.Url);
        await using var proxy = new TcpProxy(direct.Port);
        var throughProxy = $"postgresql://{direct.UserInfo}@127.0.0.1:{proxy.Port}{direct.AbsolutePath}";
        using var folder = Catalog();
        using var process = StartIndexer(folder.Path, throughProxy);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();

        for (var i = 0; i < 600 && await RowsAsync(database) == 0; i++) await Task.Delay(20);
        await proxy.StopAsync();
        var cut = System.Diagnostics.Stopwatch.StartNew();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"the indexer was still running 30 s after the database went away:\n{await output}");
            }
        }

        var seconds = cut.Elapsed.TotalSeconds;
        Assert.True(process.ExitCode != 0, $"exit {process.ExitCode}\n{await output}");
        Assert.Contains("database", await error, StringComparison.OrdinalIgnoreCase);
        Assert.True(seconds < 10, $"exited {seconds:F1} s after the cut");
        var written = await RowsAsync(database);
        Assert.InRange(written, 1, 399);

        var (exitCode, rest, _) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "index", folder.Path], null,
            ("DATABASE_URL", database.Url), ("MODEL_DIR", SharedData.ReferenceModel), ("MODEL_AUTO_DOWNLOAD", "false"));
        Assert.Equal(0, exitCode);
        Assert.Contains($"skipped {written} unchanged, failed 0", rest, StringComparison.Ordinal);
        Assert.Equal(400L, await RowsAsync(database));
    }

    /// <summary>400 photos, enough that an index run is still going when a test interrupts it.</summary>
    private static TempDirectory Catalog()
    {
        var folder = new TempDirectory("catalog");
        var photos = new[] { "chelsea.png", "coffee.png", "astronaut.png", "camera.png", "coffee-progressive.jpg" };
        for (var i = 0; i < 400; i++) File.Copy(SharedData.Image(photos[i % photos.Length]), folder.Combine($"{i:D3}-{photos[i % photos.Length]}"));
        return folder;
    }

    /// <summary>An index run in small batches (many writes), its output redirected.</summary>
    private static System.Diagnostics.Process StartIndexer(string folder, string databaseUrl)
    {
        // Through env --default-signal=INT: a process started with SIGINT ignored (a job a non-interactive shell put in
        // the background, as some CI runners start the tests) passes that on, and .NET then honours it as nohup
        // intends, so the Ctrl-C below would never arrive.
        var start = new System.Diagnostics.ProcessStartInfo("env", ["--default-signal=INT", "dotnet", Processes.ServiceAssembly(), "index", folder, "--batch", "2"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DATABASE_URL"] = databaseUrl;
        start.Environment["MODEL_DIR"] = SharedData.ReferenceModel;
        start.Environment["MODEL_AUTO_DOWNLOAD"] = "false";
        return System.Diagnostics.Process.Start(start)!;
    }

    private static async Task<long> RowsAsync(TestDatabase database)
    {
        try
        {
            return await database.ScalarAsync<long>("SELECT count(*) FROM items");
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == "42P01")
        {
            return 0; // the indexer has not created the schema yet
        }
    }
}

using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.EndToEnd;

/// <summary>The command line as a user types it: help, and every mistake refused with a sentence and exit code 2.</summary>
public sealed class CommandLineTests
{
    [Theory]
    [InlineData("index")]
    [InlineData("quantize")]
    [InlineData("download-model")]
    [InlineData("import")]
    [InlineData("migrate")]
    public async Task Every_command_has_help_with_its_defaults(string command)
    {
        var (exitCode, output, _) = await RunAsync(command, "--help");
        Assert.Equal(0, exitCode);
        Assert.Contains($"EmbeddingService {command}", output, StringComparison.Ordinal);
        if (command != "migrate") Assert.Contains(command switch { "index" => "[default: 32]", "import" => "[default: fp32]", _ => "[default: " }, output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("download-model --dir /tmp/x junk", "Unrecognized command or argument 'junk'")]
    [InlineData("imprt x", "Unrecognized command or argument 'imprt'")]
    [InlineData("--MODEL_DRI=/tmp/x", "Unrecognized command or argument '--MODEL_DRI=/tmp/x'")]
    [InlineData("quantize --scheme int4", "Argument 'int4' not recognized")]
    [InlineData("quantize --max-error lots", "--max-error takes a number above 0 and below 2")]
    [InlineData("index /no/such/folder", "/no/such/folder")]
    [InlineData("index . --batch 0", "--batch takes a whole number from 1 to 1024")]
    [InlineData("import", "Give either a FILE or --from-database URL --query SQL")]
    [InlineData("import /no/such/file.jsonl", "/no/such/file.jsonl")]
    [InlineData("import --variant int4 --from-database x --query y", "Argument 'int4' not recognized")]
    [InlineData("migrate now", "Unrecognized command or argument 'now'")]
    public async Task A_mistake_is_refused_with_a_sentence_and_exit_code_2_and_never_starts_the_server(string line, string said)
    {
        var (exitCode, output, error) = await RunAsync(line.Split(' '));
        Assert.Equal(2, exitCode);
        Assert.Contains(said, error, StringComparison.Ordinal);
        Assert.Contains("--help' for usage", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", output, StringComparison.Ordinal);
    }

    /// <summary>A setting of the wrong form, read by a command rather than the server: the same sentence and exit code 2, no stack trace.</summary>
    [Theory]
    [InlineData("MODEL_REPO", "bad repo", "MODEL_REPO must be a Hugging Face repository 'owner/name'")]
    [InlineData("DOWNLOAD_ATTEMPTS", "0", "DownloadAttempts must be between 1 and 20")]
    public async Task A_bad_setting_read_by_a_command_is_one_sentence_and_exit_code_2(string setting, string value, string said)
    {
        using var directory = new TempDirectory("no-model");
        var (exitCode, _, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), "download-model", "--dir", directory.Path], null, (setting, value));
        Assert.Equal(2, exitCode);
        Assert.StartsWith("The configuration is not valid:", error, StringComparison.Ordinal);
        Assert.Contains(said, error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        // A port nobody listens on: were the server to start by mistake, it would not collide with anything.
        var port = ServiceProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), .. args], null, ("PORT", port), ("MODEL_AUTO_DOWNLOAD", "false"));
    }
}

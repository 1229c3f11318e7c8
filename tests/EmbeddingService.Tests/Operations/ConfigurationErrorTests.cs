using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Operations;

/// <summary>A mistyped setting stops the server with one sentence naming it and exit code 2, not an unhandled exception.</summary>
public sealed class ConfigurationErrorTests
{
    [Theory]
    [InlineData("EXIF_ORIENTATION", "sideways", "EXIF_ORIENTATION")]
    [InlineData("MAX_QUEUE_DEPTH", "abc", "MAX_QUEUE_DEPTH")]
    [InlineData("MAX_QUEUE_DEPTH", "0", "MaxQueueDepth must be between 1 and 100000")]
    public async Task A_bad_setting_ends_start_up_with_a_sentence_and_exit_code_2(string key, string value, string named)
    {
        using var model = new TempDirectory("config-model");
        var (exitCode, output, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly()], null,
            (key, value), ("MODEL_DIR", model.Path), ("MODEL_AUTO_DOWNLOAD", "false"), ("PORT", EndToEnd.ServiceProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(2, exitCode);
        Assert.StartsWith("The configuration is not valid: ", error.Trim(), StringComparison.Ordinal);
        Assert.Contains(named, error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output + error, StringComparison.Ordinal);
    }
}

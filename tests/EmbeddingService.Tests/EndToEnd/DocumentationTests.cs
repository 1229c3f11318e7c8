using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmbeddingService.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Tests.EndToEnd;

/// <summary>
/// The README and the guide stay true: the settings reference names every setting the options classes bind and only
/// those; every relative link (and its #anchor) resolves; the README's walkthrough runs as a newcomer pastes it.
/// </summary>
public sealed partial class DocumentationTests
{
    private static readonly string Root = SharedData.RepositoryRoot;

    /// <summary>Read by the logging set-up from configuration directly (no options class), as the test checks in its source.</summary>
    private static readonly string[] ReadDirectly = ["LOG_LEVEL", "LOG_FORMAT"];

    private static IEnumerable<string> Pages() =>
        [Path.Combine(Root, "README.md"), .. Directory.EnumerateFiles(Path.Combine(Root, "docs"), "*.md"), Path.Combine(Root, "deploy", "README.md")];

    [Fact]
    public void The_settings_reference_names_every_bound_setting_once_and_nothing_else()
    {
        var bound = typeof(EmbeddingService.Api.RequestLimits).Assembly.GetTypes()
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            .Select(p => p.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name)
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        var logging = string.Concat(Directory.EnumerateFiles(Path.Combine(Root, "src", "EmbeddingService", "Logging"), "*.cs").Select(File.ReadAllText));
        Assert.All(ReadDirectly, name => Assert.Contains($"\"{name}\"", logging, StringComparison.Ordinal));
        bound.UnionWith(ReadDirectly);

        var operations = File.ReadAllText(Path.Combine(Root, "docs", "operations.md"));
        var reference = operations[operations.IndexOf("## Settings reference", StringComparison.Ordinal)..];
        reference = reference[..reference.IndexOf("\n## ", 5, StringComparison.Ordinal)];
        var named = SettingRow().Matches(reference).SelectMany(m => SettingName().Matches(m.Groups[1].Value).Select(n => n.Groups[1].Value)).ToList();

        Assert.Empty(bound.Except(named).Order());
        Assert.Empty(named.Except(bound).Order());
        Assert.Empty(named.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key));
    }

    [Fact]
    public void Every_relative_link_in_the_readme_and_the_guide_resolves_with_its_anchor()
    {
        var broken = new List<string>();
        foreach (var page in Pages())
        {
            var text = File.ReadAllText(page);
            foreach (Match link in Link().Matches(text))
            {
                var target = link.Groups[1].Value;
                if (target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                {
                    continue;
                }

                var hash = target.IndexOf('#', StringComparison.Ordinal);
                var file = hash < 0 ? target : target[..hash];
                var path = file.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, Uri.UnescapeDataString(file)));
                if (!File.Exists(path) && !Directory.Exists(path))
                {
                    broken.Add($"{Path.GetRelativePath(Root, page)}: {target} (no such file)");
                    continue;
                }

                if (hash >= 0 && File.Exists(path) && !Anchors(File.ReadAllText(path)).Contains(target[(hash + 1)..]))
                {
                    broken.Add($"{Path.GetRelativePath(Root, page)}: {target} (no such heading)");
                }
            }
        }

        Assert.Empty(broken);
    }

    [Fact]
    public void The_readme_stays_a_map()
    {
        var readme = File.ReadAllLines(Path.Combine(Root, "README.md"));
        Assert.InRange(readme.Length, 40, 150);
        Assert.Contains("scripts/run.sh      # run the service on http://localhost:8000 (downloads the model on first start)", readme);
        Assert.Contains(readme, l => l.StartsWith("scripts/test.sh     # run all tests", StringComparison.Ordinal));
        Assert.Equal("exec scripts/test.sh", File.ReadAllLines(Path.Combine(Root, ".ci", "run")).Last(l => l.Length > 0));
    }

    /// <summary>
    /// The walkthrough's requests, as pasted, against a service with a store (the README's own start commands are what
    /// scripts/run.sh and scripts/postgres.sh do; here the test starts the same service on a free port).
    /// </summary>
    [DatabaseFact]
    public async Task The_readme_walkthrough_runs_and_finds_what_it_says()
    {
        await using var database = await TestDatabase.CreateAsync();
        var port = ServiceProcess.FreePort();
        await using var service = await ServiceProcess.StartAsync(port, database.ServiceSettings(("LOG_LEVEL", "warning")));
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        var walkthrough = readme[readme.IndexOf("## One minute with it", StringComparison.Ordinal)..readme.IndexOf("## The API at a glance", StringComparison.Ordinal)];
        var commands = Block().Matches(walkthrough).SelectMany(m => m.Groups[1].Value.Split('\n')).Where(l => l.StartsWith("curl ", StringComparison.Ordinal)).ToList();
        Assert.Equal(7, commands.Count);
        var answers = new List<string>();
        foreach (var command in commands)
        {
            var (exitCode, output, error) = await Processes.RunAsync("bash", ["-c", command.Replace("localhost:8000", $"127.0.0.1:{port}", StringComparison.Ordinal)], Root);
            Assert.True(exitCode == 0, $"{command}: {exitCode} {error}");
            answers.Add(output.Trim());
        }

        Assert.StartsWith("{\"embedding\":[", answers[0], StringComparison.Ordinal);
        Assert.All(answers.Skip(1).Take(3), a => Assert.Contains("\"product\":", a, StringComparison.Ordinal));
        using var byPhoto = JsonDocument.Parse(answers[4]);
        Assert.Equal("red-mug", byPhoto.RootElement.GetProperty("results")[0].GetProperty("id").GetString());
        Assert.True(byPhoto.RootElement.GetProperty("results")[0].GetProperty("score").GetDouble() > 0.999);
        using var bySku = JsonDocument.Parse(answers[5]);
        Assert.Equal("blue-mug", bySku.RootElement.GetProperty("results")[0].GetProperty("id").GetString());
        using var byProduct = JsonDocument.Parse(answers[6]);
        Assert.Equal(["mug", "shoe"], byProduct.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("product").GetString()).Order());
    }

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens.</summary>
    private static HashSet<string> Anchors(string markdown) =>
        [.. Heading().Matches(markdown).Select(m => Punctuation().Replace(m.Groups[1].Value.Trim().ToLowerInvariant(), string.Empty).Replace(' ', '-'))];

    [GeneratedRegex(@"^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \|", RegexOptions.Multiline)]
    private static partial Regex SettingRow();

    [GeneratedRegex("`([A-Z][A-Z0-9_]*)`")]
    private static partial Regex SettingName();

    [GeneratedRegex(@"!?\[[^\]]*\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"^#{1,6} (.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"[^\w\- ]")]
    private static partial Regex Punctuation();

    [GeneratedRegex("```bash\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex Block();
}

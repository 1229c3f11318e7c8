using System.Diagnostics;
using EmbeddingService.Model;
using EmbeddingService.Tokenization;

namespace EmbeddingService.Bench;

/// <summary>The text tower over HTTP at 1 and 8 clients, a short query against a 77-token text, and the tokenizer alone.</summary>
internal static class TextBench
{
    public const string Query = "red leather handbag";

    public static async Task RunAsync(BenchOptions options, string modelDirectory, IReadOnlyDictionary<string, string> settings, Report report)
    {
        var texts = File.ReadAllLines(Path.Combine(options.SharedDirectory, "reference", "texts.txt"));
        var tokenizer = ClipTokenizer.Load(Path.Combine(modelDirectory, ModelFiles.Vocabulary), Path.Combine(modelDirectory, ModelFiles.Merges));
        var ids = new long[ClipTokenizer.ContextLength];
        // A long product description: it fills all 77 positions.
        var longText = string.Join(' ', Enumerable.Repeat("vintage brown leather messenger bag with brass buckles and a padded laptop sleeve", 8));
        if (tokenizer.Encode(longText, ids) != ClipTokenizer.ContextLength) throw new InvalidOperationException("the long text must fill 77 tokens");

        var clock = Stopwatch.StartNew();
        long encoded = 0;
        while (clock.Elapsed.TotalSeconds < options.Seconds / 2)
        {
            // Distinct texts each round, so the per-word cache serves only what real traffic would repeat.
            foreach (var text in texts) tokenizer.Encode(text + (encoded % 1000), ids);
            encoded += texts.Length;
        }

        report.Add("tokenizer alone, shared reference texts (1 thread)", Report.F(encoded / clock.Elapsed.TotalSeconds, 0), Report.F(clock.Elapsed.TotalMilliseconds / encoded * 1000, 1), "", "", "p50 column: microseconds per text");

        await using var service = await ServiceUnderTest.StartAsync(options.RepositoryRoot, modelDirectory, settings);
        double shortP50 = 0, longP50 = 0;
        foreach (var (name, text) in new[] { ("3-word query", Query), ("77-token text", longText) })
        {
            foreach (var clients in new[] { 1, 8 })
            {
                await HttpLoad.RunTextAsync(service.Address, text, clients, 1.5);
                var result = await HttpLoad.RunTextAsync(service.Address, text, clients, options.Seconds);
                report.Add($"POST /embed-text, {name}, {clients} client{(clients > 1 ? "s" : "")}", Report.F(result.ImagesPerSecond),
                    Report.F(result.Percentile(0.5)), Report.F(result.Percentile(0.95)), Report.F(result.Percentile(0.99)), $"texts/s; {result.FailureSummary}; {result.Breakdown}");
                if (clients == 1 && text == Query) shortP50 = result.Percentile(0.5);
                if (clients == 1 && text != Query) longP50 = result.Percentile(0.5);
            }
        }

        report.Add("3-word query p50 / 77-token text p50, 1 client", Report.F(shortP50 / longP50, 2), $"{Report.F(shortP50)} / {Report.F(longP50)}", "", "", "target <= 0.35");
    }
}

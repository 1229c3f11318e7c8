using System.Text.Json;
using EmbeddingService.Tests.Support;
using EmbeddingService.Tokenization;

namespace EmbeddingService.Tests.Tokenization;

public sealed class ClipTokenizerTests
{
    private static ClipTokenizer Reference() => ClipTokenizer.Load(
        Path.Combine(SharedData.ReferenceModel, "vocab.json"), Path.Combine(SharedData.ReferenceModel, "merges.txt"));

    [SharedDataFact]
    public void Every_reference_text_gives_the_reference_ids()
    {
        var tokenizer = Reference();
        var lines = File.ReadAllLines(Path.Combine(SharedData.Root, "reference", "tokens.jsonl"));
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            var text = entry.RootElement.GetProperty("text").GetString()!;
            var expected = entry.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var ids = new long[ClipTokenizer.ContextLength];
            var count = tokenizer.Encode(text, ids);
            Assert.True(expected.SequenceEqual(ids), $"'{text}': expected [{string.Join(",", expected.Take(count + 1))}], got [{string.Join(",", ids.Take(count + 1))}]");
            Assert.Equal(ClipTokenizer.EndOfText, ids[count - 1]);
        }
    }

    [SharedDataFact]
    public void Any_unicode_input_is_encoded_without_throwing()
    {
        var tokenizer = Reference();
        var random = new Random(5);
        var ids = new long[ClipTokenizer.ContextLength];
        for (var i = 0; i < 2000; i++)
        {
            var chars = new char[random.Next(0, 300)];
            for (var c = 0; c < chars.Length; c++) chars[c] = (char)random.Next(0, 0x10000); // lone surrogates included
            var count = tokenizer.Encode(new string(chars), ids);
            Assert.InRange(count, 2, ClipTokenizer.ContextLength);
            Assert.Equal(ClipTokenizer.StartOfText, ids[0]);
            Assert.Equal(ClipTokenizer.EndOfText, ids[count - 1]);
        }

        // One 10,000-character word: the heap keeps BPE at n log n.
        Assert.Equal(ClipTokenizer.ContextLength, tokenizer.Encode(new string('語', 10_000), ids));
    }
}

using System.IO.Compression;

namespace SyntheticModel;

/// <summary>The tokenizer files of the model directory: CLIP's byte-level BPE vocabulary and merges.</summary>
public static class ClipVocabulary
{
    public const string StartToken = "<|startoftext|>";
    public const string EndToken = "<|endoftext|>";
    private const int MergeCount = 49152 - 256 - 2;

    /// <summary>GPT-2's reversible map from bytes to printable characters, in CLIP's vocabulary order.</summary>
    public static IReadOnlyList<(byte Byte, char Symbol)> ByteSymbols()
    {
        var printable = new List<int>();
        for (var b = '!'; b <= '~'; b++) printable.Add(b);
        for (var b = '¡'; b <= '¬'; b++) printable.Add(b);
        for (var b = '®'; b <= 'ÿ'; b++) printable.Add(b);
        var result = printable.Select(b => ((byte)b, (char)b)).ToList();
        var extra = 0;
        for (var b = 0; b < 256; b++)
        {
            if (!printable.Contains(b))
            {
                result.Add(((byte)b, (char)(256 + extra++)));
            }
        }

        return result;
    }

    /// <summary>Reads the merges of CLIP's <c>bpe_simple_vocab_16e6.txt.gz</c> (its lines 2 to 48,895).</summary>
    public static IReadOnlyList<string> ReadMerges(string gzipPath)
    {
        using var file = File.OpenRead(gzipPath);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        reader.ReadLine();
        var merges = new List<string>(MergeCount);
        while (merges.Count < MergeCount && reader.ReadLine() is { } line)
        {
            merges.Add(line);
        }

        if (merges.Count != MergeCount)
        {
            throw new InvalidDataException($"{gzipPath}: expected {MergeCount} merges, found {merges.Count}.");
        }

        return merges;
    }

    /// <summary>
    /// The vocabulary in id order: 256 byte symbols, the same with <c>&lt;/w&gt;</c>, one token per merge,
    /// then the two special tokens. Without merges, the special tokens keep CLIP's ids 49406 and 49407 so the
    /// text graph and its ArgMax pooling stay those of the real model.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, int>> Vocabulary(IReadOnlyList<string> merges)
    {
        var symbols = ByteSymbols().Select(s => s.Symbol.ToString()).ToList();
        var tokens = new List<string>(symbols);
        tokens.AddRange(symbols.Select(s => s + "</w>"));
        tokens.AddRange(merges.Select(m => m.Replace(" ", string.Empty, StringComparison.Ordinal)));
        var vocabulary = tokens.Select((token, id) => KeyValuePair.Create(token, id)).ToList();
        vocabulary.Add(KeyValuePair.Create(StartToken, ClipArchitecture.StartOfText));
        vocabulary.Add(KeyValuePair.Create(EndToken, ClipArchitecture.EndOfText));
        return vocabulary;
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace EmbeddingService.Tokenization;

/// <summary>
/// CLIP's byte-level BPE tokenizer, as the original <c>SimpleTokenizer</c> (minus ftfy): HTML-unescape twice,
/// collapse whitespace, strip, lowercase; split with CLIP's pattern; map each word's UTF-8 bytes to CLIP's
/// byte symbols with <c>&lt;/w&gt;</c> on the last; merge pairs by rank. <c>&lt;|startoftext|&gt;</c> ... tokens ...
/// <c>&lt;|endoftext|&gt;</c>, zero padding, truncated to the context keeping the end token last.
/// </summary>
public sealed partial class ClipTokenizer
{
    public const long StartOfText = 49406;
    public const long EndOfText = 49407;
    public const int ContextLength = 77;

    /// <summary>Words cached at most (each a few ids); beyond it words are still encoded, just not kept.</summary>
    private const int CacheLimit = 100_000;

    /// <summary>Longer words are not cached: real words repeat, junk ones (up to MAX_TEXT_CHARS long) do not.</summary>
    private const int CachedWordLength = 64;

    private static readonly string[] ByteSymbols = BuildByteSymbols();

    private readonly Dictionary<string, int> _vocabulary;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    private ClipTokenizer(Dictionary<string, int> vocabulary, Dictionary<(string, string), int> ranks)
    {
        _vocabulary = vocabulary;
        _ranks = ranks;
    }

    /// <summary>Loads <c>vocab.json</c> and <c>merges.txt</c> of a Hugging Face CLIP model directory.</summary>
    public static ClipTokenizer Load(string vocabularyPath, string mergesPath)
    {
        var vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllBytes(vocabularyPath))
            ?? throw new InvalidDataException($"{vocabularyPath}: not a JSON object.");
        var ranks = new Dictionary<(string, string), int>();
        foreach (var line in File.ReadLines(mergesPath))
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0)
            {
                continue;
            }

            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0)
            {
                throw new InvalidDataException($"{mergesPath}: line '{line}' is not a pair.");
            }

            ranks.TryAdd((line[..space], line[(space + 1)..]), ranks.Count);
        }

        return new ClipTokenizer(vocabulary, ranks);
    }

    /// <summary>
    /// Writes the ids of <paramref name="text"/> into <paramref name="ids"/> (at least <see cref="ContextLength"/>
    /// long; the rest is zeroed) and returns how many there are, start and end tokens included.
    /// </summary>
    public int Encode(string text, Span<long> ids)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (ids.Length < ContextLength)
        {
            throw new ArgumentException($"Needs room for {ContextLength} ids.", nameof(ids));
        }

        ids.Clear();
        ids[0] = StartOfText;
        var count = 1;
        foreach (Match word in Pattern().Matches(Clean(text)))
        {
            foreach (var id in Word(word.Value))
            {
                if (count == ContextLength - 1)
                {
                    // CLIP's truncate=True: the first 77 tokens, the last replaced by the end token.
                    ids[count] = EndOfText;
                    return ContextLength;
                }

                ids[count++] = id;
            }
        }

        ids[count++] = EndOfText;
        return count;
    }

    /// <summary>basic_clean and whitespace_clean of CLIP's tokenizer, then lowercase.</summary>
    public static string Clean(string text) =>
        Whitespace().Replace(WebUtility.HtmlDecode(WebUtility.HtmlDecode(text)), " ").Trim().ToLowerInvariant();

    private int[] Word(string word)
    {
        if (_cache.TryGetValue(word, out var cached))
        {
            return cached;
        }

        var ids = Bpe(word);
        if (word.Length <= CachedWordLength && _cache.Count < CacheLimit)
        {
            _cache.TryAdd(word, ids);
        }

        return ids;
    }

    /// <summary>
    /// Merges the lowest-ranked adjacent pair until none is in the merge list. A heap of (rank, position) over a
    /// linked list of symbols does it in O(n log n): a merge only creates pairs of higher rank than itself (the
    /// merged symbol did not exist before), so popping by rank, then position, merges exactly as CLIP's loop does.
    /// </summary>
    private int[] Bpe(string word)
    {
        var bytes = Encoding.UTF8.GetBytes(word);
        var symbols = new string[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) symbols[i] = ByteSymbols[bytes[i]];
        symbols[^1] += "</w>";
        var next = new int[symbols.Length];
        var previous = new int[symbols.Length];
        for (var i = 0; i < symbols.Length; i++)
        {
            next[i] = i + 1 < symbols.Length ? i + 1 : -1;
            previous[i] = i - 1;
        }

        var heap = new PriorityQueue<int, (int Rank, int Position)>();
        void Offer(int left)
        {
            if (left >= 0 && next[left] >= 0 && _ranks.TryGetValue((symbols[left], symbols[next[left]]), out var rank))
            {
                heap.Enqueue(left, (rank, left));
            }
        }

        for (var i = 0; i < symbols.Length - 1; i++) Offer(i);
        while (heap.TryDequeue(out var left, out var key))
        {
            var right = next[left];
            if (symbols[left] is null || right < 0 || !_ranks.TryGetValue((symbols[left], symbols[right]), out var rank) || rank != key.Rank)
            {
                continue; // stale: one side was merged since
            }

            symbols[left] += symbols[right];
            symbols[right] = null!;
            next[left] = next[right];
            if (next[left] >= 0) previous[next[left]] = left;
            Offer(previous[left]);
            Offer(left);
        }

        var ids = new List<int>();
        for (var i = 0; i >= 0; i = next[i])
        {
            // Every byte symbol, alone or with </w>, is in CLIP's vocabulary; a broken vocabulary must not make text unusable.
            if (_vocabulary.TryGetValue(symbols[i], out var id)) ids.Add(id);
        }

        return [.. ids];
    }

    /// <summary>GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for code points from 256 up.</summary>
    private static string[] BuildByteSymbols()
    {
        var symbols = new string[256];
        var extra = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            symbols[b] = char.ConvertFromUtf32(printable ? b : 256 + extra++);
        }

        return symbols;
    }

    /// <summary>
    /// CLIP's pattern. The special tokens are alternatives of their own, so text that spells one out is one word,
    /// but it is encoded by BPE like any word: a user's text cannot inject control tokens (the reference does the same).
    /// </summary>
    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}

namespace EmbeddingService.Indexing;

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/> (<c>--shard I/N</c>, I from 0 as Kubernetes' job completion
/// index): an item is the shard's when XXH3-64 of its id's UTF-8, modulo N, is I. The hash is named and seedless, so
/// every machine and every run splits an input the same way (<see cref="string.GetHashCode()"/> changes per process).
/// </summary>
public readonly record struct Shard(int Index, int Count)
{
    public static readonly Shard Whole = new(0, 1);

    public bool IsWhole => Count == 1;

    public bool Contains(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return IsWhole || Importing.ImportRow.IdHash(id) % (ulong)Count == (ulong)Index;
    }

    /// <summary>"I/N" with 0 &lt;= I &lt; N &lt;= 100,000, or null with why not.</summary>
    public static Shard? Parse(string text, out string? error)
    {
        error = null;
        var parts = (text ?? string.Empty).Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index)
            && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count)
            && count is >= 1 and <= 100_000 && index < count)
        {
            return new Shard(index, count);
        }

        error = $"--shard takes I/N: this process's shard I, from 0 to N-1, of N (e.g. 0/4; Kubernetes' JOB_COMPLETION_INDEX is I); '{text}' is not one.";
        return null;
    }

    public override string ToString() => $"{Index}/{Count}";
}

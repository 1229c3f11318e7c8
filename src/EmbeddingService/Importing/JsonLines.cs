using System.Buffers;
using System.Runtime.CompilerServices;

namespace EmbeddingService.Importing;

/// <summary>One line of a JSON-lines stream: its number and bytes (rented: give them back), or too long to hold.</summary>
public readonly record struct JsonLine(long Number, byte[]? Bytes, int Length)
{
    public bool TooLong => Bytes is null;

    public Span<byte> Span => Bytes.AsSpan(0, Length);

    public void Return()
    {
        if (Bytes is not null) ArrayPool<byte>.Shared.Return(Bytes);
    }
}

/// <summary>
/// The lines of a stream read as they come, never the whole stream in memory (a manifest of ten million lines, an
/// export of millions of vectors): each non-blank line a pooled copy, a line over the bound named and skipped.
/// </summary>
public static class JsonLines
{
    /// <summary>The longest line kept: a vector of 16,000 numbers with its metadata fits many times over.</summary>
    public const int MaxLineBytes = 16 * 1024 * 1024;

    public static async IAsyncEnumerable<JsonLine> ReadAsync(Stream stream, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffer = new byte[1 << 20];
        int filled = 0, start = 0;
        long number = 0;
        var skipping = false;
        while (true)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            filled += read;
            int newline;
            while ((newline = buffer.AsSpan(start, filled - start).IndexOf((byte)'\n')) >= 0)
            {
                number++;
                if (skipping)
                {
                    skipping = false;
                }
                else if (Copy(buffer.AsSpan(start, newline), number) is { } line)
                {
                    yield return line;
                }

                start += newline + 1;
            }

            if (read == 0)
            {
                if (filled > start && !skipping && Copy(buffer.AsSpan(start, filled - start), ++number) is { } last) yield return last;
                yield break;
            }

            // Keep the unfinished line at the front; a line longer than the buffer doubles it, up to the bound.
            buffer.AsSpan(start, filled - start).CopyTo(buffer);
            (filled, start) = (filled - start, 0);
            if (filled < buffer.Length) continue;
            if (buffer.Length < MaxLineBytes)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }
            else if (!skipping)
            {
                // Named once, then read past up to its end.
                skipping = true;
                yield return new JsonLine(number + 1, null, filled);
                filled = 0;
            }
            else
            {
                filled = 0;
            }
        }
    }

    private static JsonLine? Copy(ReadOnlySpan<byte> line, long number)
    {
        var trimmed = line.Trim(" \t\r"u8);
        if (trimmed.IsEmpty) return null;
        var copy = ArrayPool<byte>.Shared.Rent(trimmed.Length);
        trimmed.CopyTo(copy);
        return new JsonLine(number, copy, trimmed.Length);
    }
}

using System.Buffers.Text;

namespace EmbeddingService.Importing;

/// <summary>
/// Reads a JSON array of numbers straight from its UTF-8 bytes. An import of JSON lines spends its time here: through
/// <see cref="System.Text.Json.Utf8JsonReader"/> (tokenize, then parse each number) 512 numbers a line held a 2-core
/// machine to ~12,000 lines/s, over half of it in those two steps (docs/decisions.md, import). Numbers of at most 15
/// significant digits and a power of ten within 10^±22 (what float writers print: 9 digits) are exact as doubles, and
/// rounded once more to float: at most one float ulp from a direct rounding, far below the halfvec the store keeps.
/// Any other number goes through the BCL's parser. The JSON grammar is checked as strictly as the reader does.
/// </summary>
internal static class JsonNumberArray
{
    public enum Outcome
    {
        /// <summary>An array of numbers, read.</summary>
        Parsed,

        /// <summary>Not an array at all: the caller's reader says what it is.</summary>
        NotArray,

        /// <summary>An element is valid JSON but not a number (a string, an object, true...).</summary>
        NotNumber,

        /// <summary>Not valid JSON.</summary>
        Malformed,
    }

    private const int ExactDigits = 15;

    private static readonly double[] PowersOfTen =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    /// <summary>
    /// Reads the array that follows <paramref name="start"/> (after whitespace and a name's colon, if the reader left
    /// it); the array is <paramref name="begin"/> to just before <paramref name="end"/>; <paramref name="failedAt"/> is
    /// the element that is not a number.
    /// </summary>
    public static Outcome Read(ReadOnlySpan<byte> json, int start, List<float> values, out int begin, out int end, out int failedAt)
    {
        ArgumentNullException.ThrowIfNull(values);
        (begin, end, failedAt) = (start, start, -1);
        var at = SkipSpace(json, start);
        if (at < json.Length && json[at] == (byte)':') at = SkipSpace(json, at + 1);
        if (at >= json.Length || json[at] != (byte)'[') return Outcome.NotArray;
        begin = at;
        at = SkipSpace(json, at + 1);
        if (at < json.Length && json[at] == (byte)']')
        {
            end = at + 1;
            return Outcome.Parsed;
        }

        while (true)
        {
            if (at >= json.Length) return Outcome.Malformed;
            var first = json[at];
            if (first is not ((byte)'-' or (>= (byte)'0' and <= (byte)'9')))
            {
                if (first is not ((byte)'"' or (byte)'[' or (byte)'{' or (byte)'t' or (byte)'f' or (byte)'n')) return Outcome.Malformed;
                failedAt = values.Count;
                return Outcome.NotNumber;
            }

            if (!TryNumber(json, ref at, out var value)) return Outcome.Malformed;
            values.Add(value);
            at = SkipSpace(json, at);
            if (at >= json.Length) return Outcome.Malformed;
            if (json[at] == (byte)']')
            {
                end = at + 1;
                return Outcome.Parsed;
            }

            if (json[at] != (byte)',') return Outcome.Malformed;
            at = SkipSpace(json, at + 1);
        }
    }

    /// <summary>One number by JSON's grammar: <c>-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?</c>.</summary>
    private static bool TryNumber(ReadOnlySpan<byte> json, ref int at, out float value)
    {
        value = 0;
        var begin = at;
        var negative = json[at] == (byte)'-';
        if (negative) at++;
        ulong mantissa = 0;
        int digits = 0, scale = 0;
        if (at >= json.Length || !IsDigit(json[at])) return false;
        if (json[at] == (byte)'0')
        {
            at++;
        }
        else
        {
            for (; at < json.Length && IsDigit(json[at]); at++) Accumulate(json[at], ref mantissa, ref digits, ref scale, fraction: false);
        }

        if (at < json.Length && json[at] == (byte)'.')
        {
            at++;
            if (at >= json.Length || !IsDigit(json[at])) return false;
            for (; at < json.Length && IsDigit(json[at]); at++) Accumulate(json[at], ref mantissa, ref digits, ref scale, fraction: true);
        }

        var exponent = 0;
        if (at < json.Length && (json[at] | 0x20) == (byte)'e')
        {
            at++;
            var negativeExponent = false;
            if (at < json.Length && json[at] is (byte)'+' or (byte)'-') negativeExponent = json[at++] == (byte)'-';
            if (at >= json.Length || !IsDigit(json[at])) return false;
            for (; at < json.Length && IsDigit(json[at]); at++) exponent = Math.Min(exponent * 10 + (json[at] - '0'), 100_000);
            if (negativeExponent) exponent = -exponent;
        }

        var power = scale + exponent;
        if (digits <= ExactDigits && Math.Abs(power) < PowersOfTen.Length)
        {
            var exact = power < 0 ? mantissa / PowersOfTen[-power] : mantissa * PowersOfTen[power];
            value = (float)(negative ? -exact : exact);
            return true;
        }

        // Long or far from 1: the BCL parses it (overflow gives an infinity, which the vector check names).
        return Utf8Parser.TryParse(json[begin..at], out value, out var consumed) && consumed == at - begin;
    }

    /// <summary>Adds a digit to the mantissa; past 19 digits it only moves the scale (the fallback parses those).</summary>
    private static void Accumulate(byte digit, ref ulong mantissa, ref int digits, ref int scale, bool fraction)
    {
        if (mantissa == 0 && digit == (byte)'0')
        {
            // Leading zeros are not significant; in a fraction each one still divides by ten.
            if (fraction) scale--;
            return;
        }

        if (digits < 19)
        {
            mantissa = (mantissa * 10) + (ulong)(digit - '0');
            if (fraction) scale--;
        }
        else if (!fraction)
        {
            scale++;
        }

        digits++;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static int SkipSpace(ReadOnlySpan<byte> json, int at)
    {
        while (at < json.Length && json[at] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r') at++;
        return at;
    }
}

using System.Runtime.InteropServices;
using System.Text;

namespace SyntheticModel;

/// <summary>
/// Seeded weights. Every tensor draws from its own stream, derived from the seed and the tensor's name,
/// so tensors can be generated in parallel and in any order while the files stay byte-identical.
/// </summary>
public sealed class WeightSource(ulong seed)
{
    /// <summary>Uniform values with mean <paramref name="mean"/> and standard deviation <paramref name="std"/>.</summary>
    public byte[] Uniform(string tensorName, long count, double std, double mean = 0)
    {
        var bytes = new byte[checked(count * sizeof(float))];
        var values = MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
        var state = SplitMix(seed ^ Fnv1a(tensorName));
        var s0 = SplitMix(ref state);
        var s1 = SplitMix(ref state);
        var s2 = SplitMix(ref state);
        var s3 = SplitMix(ref state);
        // A uniform variable on [-a, a] has standard deviation a / sqrt(3).
        var halfWidth = (float)(std * Math.Sqrt(3.0));
        var offset = (float)mean;
        for (var i = 0; i < values.Length; i++)
        {
            // xoshiro256+ : the top 24 bits are well distributed and are all a float32 mantissa takes.
            var result = s0 + s3;
            var t = s1 << 17;
            s2 ^= s0;
            s3 ^= s1;
            s1 ^= s2;
            s0 ^= s3;
            s2 ^= t;
            s3 = (s3 << 45) | (s3 >> 19);
            var unit = (result >> 40) * (1.0f / (1 << 24));
            values[i] = offset + ((unit * 2f) - 1f) * halfWidth;
        }

        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX raw_data is little-endian.");
        }

        return bytes;
    }

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }

    private static ulong SplitMix(ulong value)
    {
        var state = value;
        return SplitMix(ref state);
    }

    private static ulong SplitMix(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

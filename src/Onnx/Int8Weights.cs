namespace Onnx;

/// <summary>Chooses int8 weights by <see cref="Int8WeightScheme"/>, and tells which s8 weights can saturate a u8 x s8 kernel.</summary>
public static class Int8Weights
{
    /// <summary>The zero point of <see cref="Int8WeightScheme.ZeroPoint128"/> weights: s8 value v is stored as v + 128.</summary>
    public const byte UnsignedZeroPoint = 128;

    /// <summary>
    /// The largest |w1| + |w2| of a same-sign pair that VPMADDUBSW adds without saturating: 255 x 128 = 32,640 fits in
    /// int16, 255 x 129 = 32,895 does not.
    /// </summary>
    public const int MaxPairMagnitude = 128;

    /// <summary>Quantizes a [K, N] float32 weight with one scale per column; the values come back as s8 bytes.</summary>
    public static (byte[] Values, float[] Scales) QuantizePerColumn(ReadOnlySpan<float> values, int rows, int columns, Int8WeightScheme scheme)
    {
        var limit = scheme == Int8WeightScheme.Reduced ? 64 : 127;
        var scales = new float[columns];
        for (var k = 0; k < rows; k++)
        {
            var row = values.Slice(k * columns, columns);
            for (var n = 0; n < columns; n++) scales[n] = Math.Max(scales[n], Math.Abs(row[n]) / limit);
        }

        if (scheme == Int8WeightScheme.PairBounded)
        {
            for (var k = 0; k + 1 < rows; k += 2)
            {
                for (var n = 0; n < columns; n++)
                {
                    float a = values[(k * columns) + n], b = values[((k + 1) * columns) + n];
                    if (SameSign(a, b)) scales[n] = Math.Max(scales[n], (Math.Abs(a) + Math.Abs(b)) / MaxPairMagnitude);
                }
            }
        }

        for (var n = 0; n < columns; n++) scales[n] = scales[n] > 0 ? scales[n] : 1;
        var quantized = new byte[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            quantized[i] = (byte)(sbyte)Math.Clamp(MathF.Round(values[i] / scales[i % columns]), -limit, limit);
        }

        if (scheme == Int8WeightScheme.PairBounded)
        {
            // Rounding can take a pair whose floats sum to at most 128 steps to 129: the value rounded furthest up gives one step back.
            for (var k = 0; k + 1 < rows; k += 2)
            {
                for (var n = 0; n < columns; n++)
                {
                    int i = (k * columns) + n, j = i + columns;
                    sbyte a = (sbyte)quantized[i], b = (sbyte)quantized[j];
                    if (!SameSign(a, b) || Math.Abs(a) + Math.Abs(b) <= MaxPairMagnitude) continue;
                    var roundedUpA = Math.Abs(a) - Math.Abs(values[i] / scales[n]);
                    var roundedUpB = Math.Abs(b) - Math.Abs(values[j] / scales[n]);
                    var (index, value) = roundedUpA >= roundedUpB ? (i, a) : (j, b);
                    quantized[index] = (byte)(sbyte)(value - Math.Sign(value));
                }
            }
        }

        return (quantized, scales);
    }

    /// <summary>s8 bytes to the same values as u8 around <see cref="UnsignedZeroPoint"/>, in place.</summary>
    public static void ToUnsigned(Span<byte> values)
    {
        for (var i = 0; i < values.Length; i++) values[i] ^= 0x80;
    }

    /// <summary>
    /// Counts the same-sign pairs of rows 2j, 2j+1 of a [.., K, N] s8 weight whose magnitudes add up to more than
    /// <see cref="MaxPairMagnitude"/>: the products a u8 x s8 kernel without VNNI can saturate on.
    /// </summary>
    public static long RiskyPairs(ReadOnlySpan<byte> values, int rows, int columns)
    {
        long risky = 0;
        var matrix = rows * columns;
        for (var start = 0; start + matrix <= values.Length; start += matrix)
        {
            for (var k = 0; k + 1 < rows; k += 2)
            {
                for (var n = 0; n < columns; n++)
                {
                    sbyte a = (sbyte)values[start + (k * columns) + n], b = (sbyte)values[start + ((k + 1) * columns) + n];
                    if (SameSign(a, b) && Math.Abs(a) + Math.Abs(b) > MaxPairMagnitude) risky++;
                }
            }
        }

        return risky;
    }

    /// <summary>
    /// For weights whose pairing order is not known (convolutions): values any pairing could overflow with, |w| &gt; 64.
    /// </summary>
    public static long LargeValues(ReadOnlySpan<byte> values)
    {
        long large = 0;
        foreach (var value in values) if (Math.Abs((sbyte)value) > MaxPairMagnitude / 2) large++;
        return large;
    }

    private static bool SameSign(float a, float b) => (a > 0 && b > 0) || (a < 0 && b < 0);
}

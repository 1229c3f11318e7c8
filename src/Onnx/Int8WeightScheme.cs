namespace Onnx;

/// <summary>
/// How int8 weights are chosen. x86-64 CPUs without VNNI (AVX2, and AVX-512 without VNNI) multiply u8 activations by
/// s8 weights with VPMADDUBSW, which adds each pair of products (rows 2j and 2j+1 of a column) in int16 and saturates:
/// 255 x (|w1| + |w2|) must stay within 32,767, i.e. |w1| + |w2| &lt;= 128 when both have one sign. VNNI, AMX, SSE4.1
/// and every ARM64 kernel accumulate in int32 and never saturate. <see cref="Full"/> is the default: the most precise,
/// and the service serves its weights as <see cref="ZeroPoint128"/> on CPUs that would saturate (Int8Saturation), so it is
/// exact everywhere; the others trade precision for full speed on such CPUs. docs/decisions.md has the measurements.
/// </summary>
public enum Int8WeightScheme
{
    /// <summary>
    /// s8 in [-127, 127] with each column's scale chosen so that no same-sign pair of rows 2j, 2j+1 exceeds 128: the
    /// fast u8 x s8 kernels of every CPU, exact on all of them. Costs ~1.3x the step of <see cref="Full"/> on
    /// Gaussian weights, less on heavy-tailed (trained) ones, where one outlier sets the column's range.
    /// </summary>
    PairBounded,

    /// <summary>s8 in [-127, 127], one scale per column: exact only where u8 x s8 accumulates in int32 (VNNI, AMX, ARM64).</summary>
    Full,

    /// <summary>s8 in [-64, 64] (ONNX Runtime's "reduce_range"): cannot saturate, at twice the step of <see cref="Full"/>.</summary>
    Reduced,

    /// <summary>
    /// <see cref="Full"/>'s values stored as u8 around zero point 128: the same products through ONNX Runtime's u8 x u8
    /// kernels, which widen to int16 before multiplying (exact everywhere, slower).
    /// </summary>
    ZeroPoint128,
}

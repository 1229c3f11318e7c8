namespace EmbeddingService.Cpu;

/// <summary>
/// The kernel ONNX Runtime's MLAS picks for u8 activations x s8 weights on a CPU, in the order its platform
/// initialisation checks them (onnxruntime/core/mlas/lib/platform.cpp, 1.31).
/// </summary>
public enum Int8Kernel
{
    /// <summary>Not x86-64 with AVX2 nor ARM64: products widened to int16 and added in int32 (exact).</summary>
    Generic,

    /// <summary>AVX2: VPMADDUBSW adds each pair of u8 x s8 products in int16, saturating.</summary>
    Avx2,

    /// <summary>AVX2 + AVX-VNNI: VPDPBUSD(S) adds four products straight into int32.</summary>
    AvxVnni,

    /// <summary>AVX-512 F/BW/DQ/VL without VNNI: VPMADDUBSW on 512 bits, saturating like AVX2.</summary>
    Avx512Core,

    /// <summary>AVX-512 VNNI: VPDPBUSD on 512 bits, int32 accumulation.</summary>
    Avx512Vnni,

    /// <summary>AMX-INT8 tiles, int32 accumulation.</summary>
    Amx,

    /// <summary>ARM64 NEON without dot product: widening multiplies into int32.</summary>
    ArmNeon,

    /// <summary>ARM64 UDOT/SDOT: four products into int32.</summary>
    ArmDot,

    /// <summary>ARM64 I8MM (UMMLA/SMMLA): int32 accumulation.</summary>
    ArmI8mm,
}

public static class Int8KernelExtensions
{
    /// <summary>Whether a u8 x s8 product pair can saturate: only the kernels that add pairs in int16.</summary>
    public static bool SaturatesOnPairs(this Int8Kernel kernel) => kernel is Int8Kernel.Avx2 or Int8Kernel.Avx512Core;

    public static string Label(this Int8Kernel kernel) => kernel switch
    {
        Int8Kernel.Avx2 => "avx2",
        Int8Kernel.AvxVnni => "avx_vnni",
        Int8Kernel.Avx512Core => "avx512_core",
        Int8Kernel.Avx512Vnni => "avx512_vnni",
        Int8Kernel.Amx => "amx",
        Int8Kernel.ArmNeon => "neon",
        Int8Kernel.ArmDot => "neon_dot",
        Int8Kernel.ArmI8mm => "neon_i8mm",
        _ => "generic",
    };
}

using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace EmbeddingService.Cpu;

/// <summary>
/// The instruction sets that decide ONNX Runtime's speed and int8 arithmetic, read the way its kernels read them:
/// CPUID for what the processor has and XCR0 for what the operating system saves (AVX-512 and AMX state). .NET's
/// <c>IsSupported</c> flags are not used: <c>DOTNET_EnableAVX512F=0</c> turns those off, not ONNX Runtime's kernels.
/// </summary>
public sealed partial record CpuFeatures(
    string Architecture,
    string Name,
    bool Avx2,
    bool Fma,
    bool Avx512F,
    bool Avx512Core,
    bool Avx512Vnni,
    bool AvxVnni,
    bool AmxInt8,
    bool ArmDotProduct,
    bool ArmI8mm)
{
    private static readonly Lazy<CpuFeatures> Detected = new(Detect);

    /// <summary>This machine's, read once.</summary>
    public static CpuFeatures Current => Detected.Value;

    /// <summary>A CPU of the AVX2 class without VNNI (AMD Zen 3, Intel before Ice Lake), as the tests pose it.</summary>
    public static CpuFeatures Avx2Only { get; } = new("x64", "AVX2 without VNNI", true, true, false, false, false, false, false, false, false);

    /// <summary>The u8 x s8 kernel ONNX Runtime picks here, in the order MLAS checks (the last that applies wins).</summary>
    public Int8Kernel Int8Kernel
    {
        get
        {
            if (Architecture == "arm64")
            {
                return ArmI8mm ? Int8Kernel.ArmI8mm : ArmDotProduct ? Int8Kernel.ArmDot : Int8Kernel.ArmNeon;
            }

            if (!Avx2 || !Fma)
            {
                return Int8Kernel.Generic;
            }

            var kernel = AvxVnni ? Int8Kernel.AvxVnni : Int8Kernel.Avx2;
            if (Avx512Core)
            {
                kernel = Avx512Vnni ? Int8Kernel.Avx512Vnni : Int8Kernel.Avx512Core;
            }

            return AmxInt8 ? Int8Kernel.Amx : kernel;
        }
    }

    /// <summary>The instruction sets that matter, lower case as /proc/cpuinfo names them.</summary>
    public IReadOnlyList<string> InstructionSets => Architecture == "arm64"
        ? [.. new[] { ("asimddp", ArmDotProduct), ("i8mm", ArmI8mm) }.Where(f => f.Item2).Select(f => f.Item1)]
        : [.. new[] { ("avx2", Avx2), ("fma", Fma), ("avx512f", Avx512F), ("avx512_vnni", Avx512Vnni), ("avx_vnni", AvxVnni), ("amx_int8", AmxInt8) }
            .Where(f => f.Item2).Select(f => f.Item1)];

    /// <summary>One line for logs and benchmark headers.</summary>
    public string Describe() =>
        $"{Name} ({Architecture}; {(InstructionSets.Count > 0 ? string.Join(" ", InstructionSets) : "no vector extensions that matter")}; int8 kernel {Int8Kernel.Label()}" +
        $"{(Int8Kernel.SaturatesOnPairs() ? ", pairs saturate in int16" : ", exact")})";

    private static CpuFeatures Detect()
    {
        var architecture = RuntimeInformation.ProcessArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => "x64",
            System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
            var other => other.ToString().ToLowerInvariant(),
        };
        if (architecture == "x64" && X86Base.IsSupported)
        {
            return FromCpuid();
        }

        if (architecture == "arm64" && OperatingSystem.IsLinux())
        {
            // HWCAP_ASIMDDP is bit 20 of AT_HWCAP (16); HWCAP2_I8MM is bit 13 of AT_HWCAP2 (26).
            var hwcap = NativeMethods.getauxval(16);
            var hwcap2 = NativeMethods.getauxval(26);
            return new(architecture, ProcCpuInfo("CPU part") ?? "arm64", false, false, false, false, false, false, false,
                (hwcap & (1UL << 20)) != 0, (hwcap2 & (1UL << 13)) != 0);
        }

        return new(architecture, architecture, false, false, false, false, false, false, false, false, false);
    }

    private static CpuFeatures FromCpuid()
    {
        static bool Bit(int register, int bit) => (register & (1 << bit)) != 0;
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        var maxLeaf = X86Base.CpuId(0, 0).Eax;
        var (_, ebx7, ecx7, edx7) = maxLeaf >= 7 ? X86Base.CpuId(7, 0) : default;
        var eax71 = maxLeaf >= 7 ? X86Base.CpuId(7, 1).Eax : 0;
        var osSaves = Bit(ecx1, 27) ? Xcr0.Read() : 0;
        var avxState = Bit(ecx1, 28) && (osSaves & 0x6) == 0x6;
        var avx512State = avxState && (osSaves & 0xE0) == 0xE0;
        var avx512F = avx512State && Bit(ebx7, 16);
        // AVX512BW (30), AVX512DQ (17), AVX512VL (31): MLAS's "AVX-512 core".
        var avx512Core = avx512F && Bit(ebx7, 17) && Bit(ebx7, 30) && Bit(ebx7, 31);
        return new(
            "x64",
            BrandString(),
            Avx2: avxState && Bit(ebx7, 5),
            Fma: avxState && Bit(ecx1, 12),
            Avx512F: avx512F,
            Avx512Core: avx512Core,
            Avx512Vnni: avx512Core && Bit(ecx7, 11),
            AvxVnni: avxState && Bit(eax71, 4),
            AmxInt8: avxState && Bit(edx7, 24) && Bit(edx7, 25) && (osSaves & 0x60000) == 0x60000,
            ArmDotProduct: false,
            ArmI8mm: false);
    }

    private static string BrandString()
    {
        if ((uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax < 0x80000004)
        {
            return "x86-64";
        }

        Span<int> registers = stackalloc int[12];
        for (var leaf = 0; leaf < 3; leaf++)
        {
            var (a, b, c, d) = X86Base.CpuId(unchecked((int)0x80000002) + leaf, 0);
            (registers[leaf * 4], registers[(leaf * 4) + 1], registers[(leaf * 4) + 2], registers[(leaf * 4) + 3]) = (a, b, c, d);
        }

        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(registers)).TrimEnd('\0').Trim();
    }

    private static string? ProcCpuInfo(string key)
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// XGETBV has no .NET API: four instructions put into an executable page and called once. Without it, a CPU whose
    /// kernel leaves AVX-512 state off (a VM, <c>clearcpuid</c>) would be reported as running AVX-512 kernels it does not.
    /// </summary>
    private static class Xcr0
    {
        // xor ecx, ecx; xgetbv; shl rdx, 32; or rax, rdx; ret
        private static readonly byte[] Code = [0x31, 0xC9, 0x0F, 0x01, 0xD0, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3];

        public static unsafe long Read()
        {
            if (!OperatingSystem.IsLinux())
            {
                return 0;
            }

            const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivateAnonymous = 0x22;
            var page = NativeMethods.mmap(0, 4096, ProtRead | ProtWrite, MapPrivateAnonymous, -1, 0);
            if (page == -1)
            {
                return 0;
            }

            try
            {
                Code.CopyTo(new Span<byte>((void*)page, Code.Length));
                if (NativeMethods.mprotect(page, 4096, ProtRead | ProtExec) != 0)
                {
                    return 0;
                }

                return (long)((delegate* unmanaged<ulong>)page)();
            }
            finally
            {
                _ = NativeMethods.munmap(page, 4096);
            }
        }
    }

    private static partial class NativeMethods
    {
        [LibraryImport("libc")]
        internal static partial nint mmap(nint address, nuint length, int protection, int flags, int descriptor, nint offset);

        [LibraryImport("libc")]
        internal static partial int mprotect(nint address, nuint length, int protection);

        [LibraryImport("libc")]
        internal static partial int munmap(nint address, nuint length);

        [LibraryImport("libc")]
        internal static partial ulong getauxval(ulong type);
    }
}

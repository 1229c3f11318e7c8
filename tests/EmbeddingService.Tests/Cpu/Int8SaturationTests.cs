using EmbeddingService.Cpu;
using EmbeddingService.Quantization;
using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using Microsoft.Extensions.Logging;
using Onnx;

namespace EmbeddingService.Tests.Cpu;

/// <summary>
/// int8 weights against the arithmetic of every CPU class: which schemes can saturate VPMADDUBSW (shown by emulating
/// it, whatever CPU runs the test), how the service serves a file that can, and which kernel each CPU gets.
/// </summary>
[Collection(TinyModelGroup.Name)]
public sealed class Int8SaturationTests(TinyModelFixture tiny)
{
    private const int Rows = 256, Columns = 64;

    [Theory]
    [InlineData(Int8WeightScheme.Full, true)]
    [InlineData(Int8WeightScheme.PairBounded, false)]
    [InlineData(Int8WeightScheme.Reduced, false)]
    public void Only_full_range_s8_weights_have_pairs_that_saturate_an_int16_pair_sum(Int8WeightScheme scheme, bool saturates)
    {
        var (values, _) = Int8Weights.QuantizePerColumn(GaussianWeights(), Rows, Columns, scheme);
        Assert.Equal(saturates, Int8Weights.RiskyPairs(values, Rows, Columns) > 0);

        // VPMADDUBSW on the worst activations for each column (255 where the weight is positive, else 0) against the
        // exact integer product: they differ exactly when a pair was reported.
        var differs = false;
        for (var n = 0; n < Columns; n++)
        {
            var activations = new byte[Rows];
            for (var k = 0; k < Rows; k++) activations[k] = (sbyte)values[(k * Columns) + n] > 0 ? (byte)255 : (byte)0;
            differs |= EmulatedAvx2(activations, values, n) != Exact(activations, values, n);
        }

        Assert.Equal(saturates, differs);
    }

    [Fact]
    public void Pair_bounded_weights_keep_every_same_sign_pair_within_128_and_every_value_within_127()
    {
        var (values, scales) = Int8Weights.QuantizePerColumn(GaussianWeights(), Rows, Columns, Int8WeightScheme.PairBounded);
        Assert.All(values, v => Assert.InRange((sbyte)v, -127, 127));
        Assert.Equal(0, Int8Weights.RiskyPairs(values, Rows, Columns));
        Assert.All(scales, s => Assert.True(s > 0));
    }

    [Fact]
    public void A_full_range_file_is_served_exact_on_a_cpu_whose_pairs_saturate()
    {
        using var copy = TempDirectory.CopyOf(tiny.Directory, "int8-avx2");
        Assert.Equal(0, QuantizeCommand.Run(["--dir", copy.Path, "--scheme", "full"]));
        var graph = Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(copy.Path, "onnx", "vision_model_quantized.onnx")));
        Assert.True(Int8Saturation.Inspect(graph).CanSaturate);

        var logs = new ListLogger();
        using var here = Models.Load(copy.Path, ModelVariant.Quantized);
        using var avx2 = new ModelLoader(new OrtSessionFactory(new InferenceOptions { IntraOpThreads = 1 }, logs, CpuFeatures.Avx2Only))
            .Load(new ModelFiles(copy.Path, ModelVariant.Quantized));
        Assert.Contains(logs.Lines, l => l.Contains("served as the same values in u8", StringComparison.Ordinal));

        // The rewritten weights are the same numbers: the vectors equal those of the file as written, on any CPU.
        Assert.InRange(Model.QuantizationTests.ImageDistance(here, avx2), -1e-6, 1e-6);
        Int8Saturation.MakeExact(graph);
        Assert.False(Int8Saturation.Inspect(graph).CanSaturate);
    }

    [Fact]
    public void A_file_that_cannot_saturate_is_served_as_written()
    {
        using var copy = TempDirectory.CopyOf(tiny.Directory, "int8-pairs");
        Assert.Equal(0, QuantizeCommand.Run(["--dir", copy.Path, "--scheme", "pair-bounded"]));
        var logs = new ListLogger();
        using var model = new ModelLoader(new OrtSessionFactory(new InferenceOptions { IntraOpThreads = 1 }, logs, CpuFeatures.Avx2Only))
            .Load(new ModelFiles(copy.Path, ModelVariant.Quantized));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("served as the same values in u8", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Contains("no pair can saturate", StringComparison.Ordinal));
    }

    public static TheoryData<string, CpuFeatures, Int8Kernel> Cpus => new()
    {
        { "Zen 3, Haswell to Comet Lake", CpuFeatures.Avx2Only, Int8Kernel.Avx2 },
        { "Skylake-SP", CpuFeatures.Avx2Only with { Avx512F = true, Avx512Core = true }, Int8Kernel.Avx512Core },
        { "Zen 4/5, Ice Lake, Cascade Lake", CpuFeatures.Avx2Only with { Avx512F = true, Avx512Core = true, Avx512Vnni = true }, Int8Kernel.Avx512Vnni },
        { "Alder Lake", CpuFeatures.Avx2Only with { AvxVnni = true }, Int8Kernel.AvxVnni },
        { "Sapphire Rapids", CpuFeatures.Avx2Only with { Avx512F = true, Avx512Core = true, Avx512Vnni = true, AvxVnni = true, AmxInt8 = true }, Int8Kernel.Amx },
        { "x86-64 without AVX2", CpuFeatures.Avx2Only with { Avx2 = false, Fma = false }, Int8Kernel.Generic },
        { "Graviton 2", new CpuFeatures("arm64", "Neoverse N1", false, false, false, false, false, false, false, true, false), Int8Kernel.ArmDot },
        { "Graviton 3", new CpuFeatures("arm64", "Neoverse V1", false, false, false, false, false, false, false, true, true), Int8Kernel.ArmI8mm },
    };

    [Theory]
    [MemberData(nameof(Cpus))]
    public void Each_cpu_class_gets_the_kernel_onnx_runtime_picks_and_only_two_saturate(string cpu, CpuFeatures features, Int8Kernel kernel)
    {
        Assert.Equal(kernel, features.Int8Kernel);
        Assert.Equal(kernel is Int8Kernel.Avx2 or Int8Kernel.Avx512Core, features.Int8Kernel.SaturatesOnPairs());
        Assert.NotEmpty(cpu);
    }

    [Fact]
    public void This_machines_instruction_sets_agree_with_the_kernels_view_in_proc_cpuinfo()
    {
        var flags = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet()
            : null;
        var cpu = CpuFeatures.Current;
        if (flags is null || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
        {
            Assert.NotEqual("x64", cpu.Architecture);
            return;
        }

        Assert.Equal(flags!.Contains("avx2"), cpu.Avx2);
        Assert.Equal(flags.Contains("avx512f"), cpu.Avx512F);
        Assert.Equal(flags.Contains("avx512_vnni"), cpu.Avx512Vnni);
        Assert.Equal(flags.Contains("avx_vnni"), cpu.AvxVnni);
        Assert.Equal(flags.Contains("amx_int8") && flags.Contains("amx_tile"), cpu.AmxInt8);
    }

    /// <summary>Column n of u8 activations x s8 weights as VPMADDUBSW + VPMADDWD compute it: pairs saturated to int16.</summary>
    private static int EmulatedAvx2(byte[] activations, byte[] weights, int n)
    {
        var sum = 0;
        for (var k = 0; k < Rows; k += 2)
        {
            var pair = (activations[k] * (sbyte)weights[(k * Columns) + n]) + (activations[k + 1] * (sbyte)weights[((k + 1) * Columns) + n]);
            sum += Math.Clamp(pair, short.MinValue, short.MaxValue);
        }

        return sum;
    }

    private static int Exact(byte[] activations, byte[] weights, int n)
    {
        var sum = 0;
        for (var k = 0; k < Rows; k++) sum += activations[k] * (sbyte)weights[(k * Columns) + n];
        return sum;
    }

    private static float[] GaussianWeights()
    {
        var random = new Random(16);
        var values = new float[Rows * Columns];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()) * 0.02);
        }

        return values;
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines) Lines.Add(formatter(state, exception));
        }
    }
}

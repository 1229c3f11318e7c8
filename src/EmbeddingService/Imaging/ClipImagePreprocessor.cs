using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using EmbeddingService.Limits;
using EmbeddingService.Model;

namespace EmbeddingService.Imaging;

/// <summary>
/// CLIP's image transform, bit-exact with Pillow + torchvision: resize the short side to <c>shortest_edge</c> with
/// Pillow's BICUBIC (horizontal pass, uint8 rounding, vertical pass), center-crop with torchvision's rounding, then
/// (v * rescale - mean) / std into planar float32. Only the pixels inside the crop are ever computed: every output
/// pixel of Pillow's resampler depends on its own coefficients alone, so the result is the same.
/// </summary>
public sealed class ClipImagePreprocessor
{
    private const int Half = 1 << (PillowBicubic.PrecisionBits - 1);
    private readonly PreprocessorSettings _settings;
    private readonly float[] _lookup;

    public ClipImagePreprocessor(PreprocessorSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
        _lookup = new float[3 * 256];
        for (var channel = 0; channel < 3; channel++)
        {
            for (var value = 0; value < 256; value++)
            {
                _lookup[(channel * 256) + value] = ((value * settings.RescaleFactor) - settings.Mean[channel]) / settings.Std[channel];
            }
        }
    }

    /// <summary>Floats per image: 3 x crop height x crop width.</summary>
    public int OutputLength => 3 * _settings.CropHeight * _settings.CropWidth;

    /// <summary>The size the short side is resized to, the long side following as torchvision computes it.</summary>
    public static (int Width, int Height) ResizedSize(int width, int height, int shortestEdge) => width <= height
        ? (shortestEdge, (int)((double)((long)shortestEdge * height) / width))
        : ((int)((double)((long)shortestEdge * width) / height), shortestEdge);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Preprocess(RgbaImage image, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (destination.Length < OutputLength)
        {
            throw new ArgumentException($"Needs {OutputLength} floats.", nameof(destination));
        }

        int cropW = _settings.CropWidth, cropH = _settings.CropHeight;
        var (outW, outH) = ResizedSize(image.Width, image.Height, _settings.ShortestEdge);
        var top = (int)Math.Round((outH - cropH) / 2.0, MidpointRounding.ToEven);
        var left = (int)Math.Round((outW - cropW) / 2.0, MidpointRounding.ToEven);
        var horizontal = outW != image.Width ? PillowBicubic.Create(image.Width, outW, left, cropW) : null;
        var vertical = outH != image.Height ? PillowBicubic.Create(image.Height, outH, top, cropH) : null;

        // Input rows the cropped output rows read, as Pillow's ybox_first / ybox_last.
        var firstRow = vertical is null ? top : vertical.Bounds[0];
        var lastOut = cropH - 1;
        var endRow = vertical is null ? top + cropH : vertical.Bounds[lastOut * 2] + vertical.Bounds[(lastOut * 2) + 1];
        var rowBytes = cropW * 4;
        var rows = endRow - firstRow;
        // The rows the crop reads reach tens of MB for tall images: from the bounded pool, not the shared one, which
        // would keep them for the life of the process.
        using var tempBuffer = BoundedBufferPool.Images.Rent(rows * rowBytes);
        var temp = tempBuffer.Span;
        var accumulator = ArrayPool<int>.Shared.Rent(rowBytes);
        var outputRow = ArrayPool<byte>.Shared.Rent(rowBytes);
        try
        {
            for (var y = 0; y < rows; y++)
            {
                var source = image.Pixels.Slice((firstRow + y) * image.Stride, image.Stride);
                var target = temp.Slice(y * rowBytes, rowBytes);
                if (horizontal is null)
                {
                    source.Slice(left * 4, rowBytes).CopyTo(target);
                }
                else
                {
                    ResampleRow(source, target, horizontal, cropW);
                }
            }

            var plane = cropW * cropH;
            for (var y = 0; y < cropH; y++)
            {
                ReadOnlySpan<byte> row;
                if (vertical is null)
                {
                    row = temp.Slice((top + y - firstRow) * rowBytes, rowBytes);
                }
                else
                {
                    ResampleColumnRow(temp, rowBytes, vertical, y, firstRow, accumulator.AsSpan(0, rowBytes));
                    Narrow(accumulator.AsSpan(0, rowBytes), outputRow.AsSpan(0, rowBytes));
                    row = outputRow.AsSpan(0, rowBytes);
                }

                Normalize(row, destination.Slice(y * cropW, cropW), destination.Slice(plane + (y * cropW), cropW), destination.Slice((2 * plane) + (y * cropW), cropW));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(outputRow);
            ArrayPool<int>.Shared.Return(accumulator);
        }
    }

    /// <summary>Horizontal pass for the crop's columns (the filter's window): all four channels of a pixel in one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ResampleRow(ReadOnlySpan<byte> source, Span<byte> target, PillowBicubic filter, int count)
    {
        var kernel = filter.KernelSize;
        ref var sourceStart = ref MemoryMarshal.GetReference(source);
        var target32 = MemoryMarshal.Cast<byte, uint>(target);
        for (var j = 0; j < count; j++)
        {
            var xmin = filter.Bounds[j * 2];
            var taps = filter.Bounds[(j * 2) + 1];
            var weights = filter.Coefficients.AsSpan(j * kernel, taps);
            var sum = Vector128.Create(Half);
            ref var pixel = ref Unsafe.Add(ref sourceStart, xmin * 4);
            for (var t = 0; t < weights.Length; t++)
            {
                sum += Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref pixel, t * 4))) * weights[t];
            }

            target32[j] = Clip8(sum);
        }
    }

    /// <summary>Vertical pass for output row <paramref name="yy"/> of the crop, tap by tap over whole rows so memory is read in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ResampleColumnRow(ReadOnlySpan<byte> temp, int rowBytes, PillowBicubic filter, int yy, int firstRow, Span<int> sums)
    {
        var ymin = filter.Bounds[yy * 2] - firstRow;
        var taps = filter.Bounds[(yy * 2) + 1];
        var weights = filter.Coefficients.AsSpan(yy * filter.KernelSize, taps);
        sums.Fill(Half);
        ref var sumStart = ref MemoryMarshal.GetReference(sums);
        for (var t = 0; t < weights.Length; t++)
        {
            var weight = Vector128.Create(weights[t]);
            ref var row = ref MemoryMarshal.GetReference(temp[((ymin + t) * rowBytes)..]);
            for (var i = 0; i < rowBytes; i += 4)
            {
                ref var slot = ref Unsafe.Add(ref sumStart, i);
                var current = Vector128.LoadUnsafe(ref slot);
                (current + (Widen(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref row, i))) * weight)).StoreUnsafe(ref slot);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Narrow(Span<int> sums, Span<byte> target)
    {
        var target32 = MemoryMarshal.Cast<byte, uint>(target);
        ref var sumStart = ref MemoryMarshal.GetReference(sums);
        for (var i = 0; i < target32.Length; i++)
        {
            target32[i] = Clip8(Vector128.LoadUnsafe(ref Unsafe.Add(ref sumStart, i * 4)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Normalize(ReadOnlySpan<byte> rgba, Span<float> red, Span<float> green, Span<float> blue)
    {
        var lookup = _lookup.AsSpan();
        var redLut = lookup[..256];
        var greenLut = lookup.Slice(256, 256);
        var blueLut = lookup.Slice(512, 256);
        for (var x = 0; x < red.Length; x++)
        {
            red[x] = redLut[rgba[x * 4]];
            green[x] = greenLut[rgba[(x * 4) + 1]];
            blue[x] = blueLut[rgba[(x * 4) + 2]];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Widen(uint rgba) =>
        Vector128.WidenLower(Vector128.WidenLower(Vector128.CreateScalarUnsafe(rgba).AsByte())).AsInt32();

    /// <summary>Pillow's clip8: the fixed-point sum shifted down, clamped to 0..255.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Clip8(Vector128<int> sum)
    {
        var clamped = Vector128.Clamp(Vector128.ShiftRightArithmetic(sum, PillowBicubic.PrecisionBits), Vector128<int>.Zero, Vector128.Create(255));
        var bytes = Vector128.Narrow(Vector128.Narrow(clamped, clamped), Vector128<short>.Zero);
        return Vector128.AsUInt32(Vector128.AsByte(bytes)).ToScalar();
    }
}

using System.Runtime.CompilerServices;
namespace EmbeddingService.Imaging;

/// <summary>
/// The resampling coefficients of Pillow's <c>Image.resize(..., BICUBIC)</c> (libImaging/Resample.c): cubic
/// convolution with a = -0.5, support widened by the downscale factor, weights normalized in double and then
/// rounded to 22-bit fixed point. The arithmetic follows the C code step by step so that the rounding matches.
/// </summary>
public sealed class PillowBicubic
{
    public const int PrecisionBits = 32 - 8 - 2;
    private const double Support = 2.0;

    private PillowBicubic(int kernelSize, int[] bounds, int[] coefficients)
    {
        KernelSize = kernelSize;
        Bounds = bounds;
        Coefficients = coefficients;
    }

    /// <summary>Taps per output pixel (the same for all; unused taps are zero).</summary>
    public int KernelSize { get; }

    /// <summary>Per output pixel of the window: first input index, then number of taps.</summary>
    public int[] Bounds { get; }

    /// <summary>Per output pixel of the window: <see cref="KernelSize"/> fixed-point weights.</summary>
    public int[] Coefficients { get; }

    /// <summary>
    /// The coefficients of output pixels [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>)
    /// of a resize from <paramref name="inSize"/> to <paramref name="outSize"/>; index 0 is output pixel
    /// <paramref name="first"/>. Each pixel's coefficients depend on its own position only, so a window costs only its
    /// own size: a crop of a 10 x 5,000,000 image does not compute 112 million rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static PillowBicubic Create(int inSize, int outSize, int first, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(first);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, outSize - first);
        double scale = (double)inSize / outSize;
        var filterScale = scale < 1.0 ? 1.0 : scale;
        var support = Support * filterScale;
        var kernelSize = ((int)Math.Ceiling(support) * 2) + 1;
        var bounds = new int[count * 2];
        var coefficients = new int[count * kernelSize];
        var weights = new double[kernelSize];
        for (var i = 0; i < count; i++)
        {
            var xx = first + i;
            var center = (xx + 0.5) * scale;
            var ww = 0.0;
            var ss = 1.0 / filterScale;
            var xmin = (int)(center - support + 0.5);
            if (xmin < 0)
            {
                xmin = 0;
            }

            var xmax = (int)(center + support + 0.5);
            if (xmax > inSize)
            {
                xmax = inSize;
            }

            xmax -= xmin;
            for (var x = 0; x < xmax; x++)
            {
                var w = Filter((x + xmin - center + 0.5) * ss);
                weights[x] = w;
                ww += w;
            }

            for (var x = 0; x < xmax; x++)
            {
                if (ww != 0.0)
                {
                    weights[x] /= ww;
                }

                var fixedPoint = weights[x] * (1 << PrecisionBits);
                coefficients[(i * kernelSize) + x] = weights[x] < 0 ? (int)(-0.5 + fixedPoint) : (int)(0.5 + fixedPoint);
            }

            bounds[i * 2] = xmin;
            bounds[(i * 2) + 1] = xmax;
        }

        return new PillowBicubic(kernelSize, bounds, coefficients);
    }

    private static double Filter(double x)
    {
        const double a = -0.5;
        if (x < 0.0)
        {
            x = -x;
        }

        if (x < 1.0)
        {
            return ((((a + 2.0) * x) - (a + 3.0)) * x * x) + 1;
        }

        if (x < 2.0)
        {
            return ((((((x - 5) * x) + 8) * x) - 4) * a);
        }

        return 0.0;
    }
}

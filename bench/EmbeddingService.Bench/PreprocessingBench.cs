using System.Diagnostics;
using EmbeddingService.Imaging;
using EmbeddingService.Model;

namespace EmbeddingService.Bench;

/// <summary>Decode + resize + normalize per image on one thread, exact and with JPEG DCT-domain downscaling.</summary>
internal static class PreprocessingBench
{
    public static void Run(PreprocessorSettings settings, IReadOnlyList<(string Name, byte[] Bytes)> images, double seconds, Report report)
    {
        var preprocessor = new ClipImagePreprocessor(settings);
        var pixels = new float[preprocessor.OutputLength];
        foreach (var (name, bytes) in images)
        {
            foreach (var factor in new[] { 0.0, new ImagingOptions().FastDecodeFactorFor(224) })
            {
                var decoder = new ImageDecoder(new ImagingOptions { FastDecodeFactor = factor });
                void Once()
                {
                    using var image = decoder.Decode(bytes, settings.ShortestEdge);
                    preprocessor.Preprocess(image, pixels);
                }

                Once();
                var times = new List<double>();
                var clock = Stopwatch.StartNew();
                while (clock.Elapsed.TotalSeconds < seconds / 2 || times.Count < 5)
                {
                    var start = clock.Elapsed.TotalMilliseconds;
                    Once();
                    times.Add(clock.Elapsed.TotalMilliseconds - start);
                }

                times.Sort();
                report.Add($"preprocess only, {name}, {(factor == 0 ? "exact full decode" : $"fast decode (factor {factor}, the default)")}", Report.F(1000 / times[times.Count / 2]),
                    Report.F(times[times.Count / 2], 2), Report.F(times[(int)(times.Count * 0.95)], 2), "", "1 thread");
            }
        }
    }
}

using EmbeddingService.Imaging;
using EmbeddingService.Model;

namespace EmbeddingService.Quantization;

/// <summary>How far a variant's embeddings are from fp32's on a probe set, per tower.</summary>
public sealed record TowerDistance(string Tower, int Items, double Max, double Mean)
{
    public override string ToString() => FormattableString.Invariant($"{Tower}: max 1 - cos {Max:E2}, mean {Mean:E2} over {Items} {(Tower == "vision" ? "images" : "texts")}");
}

/// <summary>
/// Embeds a probe set with a model's fp32 towers and with a variant of them, on this CPU, through the same sessions
/// the service opens: what <c>quantize</c> checks before it moves a variant into place.
/// </summary>
public static class VariantCheck
{
    /// <summary>Product-search queries of the lengths clients send, and one that fills the context.</summary>
    /// <summary>How many scenes are generated when no folder of probe images is given.</summary>
    public const int GeneratedImages = 12;

    public static int TextCount => Texts.Length;

    private static readonly string[] Texts =
    [
        "red running shoes", "a photo of a dog", "stainless steel water bottle 750 ml", "wooden dining table with six chairs",
        "women's black leather ankle boots with a low heel", "vintage film camera", "blue denim jacket", "ceramic coffee mug",
        "kids' bicycle with training wheels", "noise cancelling wireless headphones", "a bowl of fresh strawberries",
        "gold necklace with a small pendant", "green velvet sofa in a bright living room", "USB-C charging cable, 2 m, braided",
        "the quick brown fox jumps over the lazy dog while a photographer takes a picture of a mountain landscape at sunset " +
        "with a camera on a tripod beside a lake full of reflections of clouds, trees, boats and birds flying south",
        "a",
    ];

    public static IReadOnlyList<TowerDistance> Measure(ClipModel fp32, ClipModel variant, string? imageFolder)
    {
        ArgumentNullException.ThrowIfNull(fp32);
        ArgumentNullException.ThrowIfNull(variant);
        var results = new List<TowerDistance>();
        if (fp32.Towers.HasFlag(ModelTowers.Vision) && variant.Towers.HasFlag(ModelTowers.Vision))
        {
            var preprocessor = new ClipImagePreprocessor(fp32.Preprocessor);
            var pixels = new float[preprocessor.OutputLength];
            results.Add(Distance("vision", ProbeImages(imageFolder), fp32.Vision.Dimension, image =>
            {
                using (image)
                {
                    preprocessor.Preprocess(image, pixels);
                }

                return pixels;
            }, fp32.Vision, variant.Vision));
        }

        if (fp32.Towers.HasFlag(ModelTowers.Text) && variant.Towers.HasFlag(ModelTowers.Text))
        {
            var ids = new long[ClipModel.ContextLength];
            results.Add(Distance("text", Texts, fp32.Text.Dimension, text =>
            {
                fp32.Tokenizer.Encode(text, ids);
                return ids;
            }, fp32.Text, variant.Text));
        }

        return results;
    }

    private static TowerDistance Distance<TItem>(string tower, IEnumerable<TItem> items, int dimension, Func<TItem, Array> input,
        Inference.EmbeddingTower reference, Inference.EmbeddingTower candidate)
    {
        static void Embed(Inference.EmbeddingTower tower, Array values, float[] destination)
        {
            if (values is long[] ids) tower.Embed(ids, 1, destination);
            else tower.Embed((float[])values, 1, destination);
        }

        float[] a = new float[dimension], b = new float[dimension];
        double max = 0, sum = 0;
        var count = 0;
        foreach (var item in items)
        {
            var values = input(item);
            Embed(reference, values, a);
            Embed(candidate, values, b);
            var distance = 1 - System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);
            (max, sum, count) = (Math.Max(max, distance), sum + distance, count + 1);
        }

        return new TowerDistance(tower, count, max, count == 0 ? 0 : sum / count);
    }

    /// <summary>The images of <paramref name="folder"/>, or <see cref="GeneratedImages"/> generated scenes: gradients, shapes, edges and noise.</summary>
    private static IEnumerable<RgbaImage> ProbeImages(string? folder)
    {
        if (folder is not null)
        {
            var decoder = new ImageDecoder(new ImagingOptions { FastDecodeFactor = 0 });
            foreach (var file in Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal))
            {
                RgbaImage image;
                try
                {
                    image = decoder.Decode(File.ReadAllBytes(file));
                }
                catch (ImageRejectedException)
                {
                    continue;
                }

                yield return image;
            }

            yield break;
        }

        var random = new Random(20261202);
        for (var n = 0; n < GeneratedImages; n++)
        {
            var (width, height) = (224 + random.Next(200), 224 + random.Next(200));
            var image = new RgbaImage(width, height);
            var pixels = image.Pixels;
            var (cx, cy, radius) = (random.Next(width), random.Next(height), 30 + random.Next(100));
            var colours = new[] { random.Next(256), random.Next(256), random.Next(256), random.Next(256), random.Next(256), random.Next(256) };
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var inside = ((x - cx) * (x - cx)) + ((y - cy) * (y - cy)) < radius * radius;
                    var i = ((y * width) + x) * 4;
                    for (var c = 0; c < 3; c++)
                    {
                        var gradient = (colours[c] * x / width) + (colours[c + 3] * y / height);
                        var value = (inside ? 255 - gradient : gradient) + random.Next(-12, 13);
                        pixels[i + c] = (byte)Math.Clamp(value, 0, 255);
                    }

                    pixels[i + 3] = 255;
                }
            }

            yield return image;
        }
    }
}

using System.Numerics.Tensors;

namespace EmbeddingService.Bench;

/// <summary>
/// Catalogue-shaped unit vectors, generated (no real CLIP vectors can be had here): 100 categories of 10 brands, each
/// brand with its products, 10 photos per product (or as asked). A vector is the sum of orthogonal-ish random directions with these
/// shares of its squared norm: common to all 0.40 (CLIP's embeddings are anisotropic: unrelated product photos are at
/// cosine ~0.4), category 0.15, brand 0.10, product 0.20, the photo's own 0.15; so photos of one product are at ~0.85,
/// of one brand ~0.65, of one category ~0.55. Metadata: the category (1 % each), the brand (0.1 %), and two attributes
/// that have nothing to do with the image: a colour (10 values, 10 % each) and a shelf (1,000 values, 0.1 % each).
/// The flat shape (<see cref="Flat"/>): 1,000 random centres, no common part, noise of norm ~0.9.
/// </summary>
internal sealed class Catalogue
{
    public const int Dimension = 512;
    private const int Categories = 100, BrandsPerCategory = 10, Colours = 10, Shelves = 1000;
    private readonly float[][] _parts;
    private readonly bool _flat;
    private readonly int _seed;

    private Catalogue(int count, bool flat, int seed, int photosPerProduct = 10)
    {
        Count = count;
        _flat = flat;
        _seed = seed;
        var random = new Random(seed);
        Products = Math.Max(1, count / photosPerProduct);
        // Directions: [0] common, then categories, brands, products (flat: 1,000 centres).
        var directions = flat ? 1000 : 1 + Categories + (Categories * BrandsPerCategory) + Products;
        _parts = new float[directions][];
        for (var i = 0; i < directions; i++) _parts[i] = Direction(random);
        Vectors = new float[(long)count * Dimension];
        var noise = new Random(seed + 1);
        for (var i = 0; i < count; i++) Photo(i % Products, noise, Vectors.AsSpan((int)((long)i * Dimension), Dimension));
        Colour = new byte[count];
        Shelf = new short[count];
        for (var i = 0; i < count; i++)
        {
            Colour[i] = (byte)noise.Next(Colours);
            Shelf[i] = (short)noise.Next(Shelves);
        }
    }

    public int Count { get; }

    public int Products { get; }

    /// <summary>Item i's vector at [i * 512, (i + 1) * 512).</summary>
    public float[] Vectors { get; }

    public byte[] Colour { get; }

    public short[] Shelf { get; }

    public static Catalogue Generate(int count, int seed = 7, int photosPerProduct = 10) => new(count, flat: false, seed, photosPerProduct);

    public static Catalogue Flat(int count, int seed = 7) => new(count, flat: true, seed);

    public ReadOnlySpan<float> Vector(int item) => Vectors.AsSpan(item * Dimension, Dimension);

    public int Product(int item) => item % Products;

    public int Brand(int item) => Product(item) % (Categories * BrandsPerCategory);

    public int Category(int item) => Brand(item) / BrandsPerCategory;

    public static string Id(int item) => $"p{item:D8}";

    public string MetadataJson(int item) => _flat
        ? $"{{\"colour\": \"k{Colour[item]}\", \"shelf\": \"s{Shelf[item]}\"}}"
        : $"{{\"category\": \"c{Category(item)}\", \"brand\": \"b{Brand(item)}\", \"colour\": \"k{Colour[item]}\", \"shelf\": \"s{Shelf[item]}\"}}";

    /// <summary>A query: a new photo of the product of a stored item (the nearest items are its product's photos, then its brand's).</summary>
    public float[] Query(int item, Random random)
    {
        var vector = new float[Dimension];
        Photo(Product(item), random, vector);
        return vector;
    }

    /// <summary>The 10 nearest items among those that match, by float32 cosine (the vectors are unit length): the truth recall is measured against.</summary>
    public List<int> Exact(float[] query, Func<int, bool> matches)
    {
        var best = new PriorityQueue<int, float>();
        for (var i = 0; i < Count; i++)
        {
            if (!matches(i)) continue;
            var score = TensorPrimitives.Dot(Vector(i), query);
            if (best.Count < 10) best.Enqueue(i, score);
            else if (best.TryPeek(out _, out var worst) && score > worst) best.EnqueueDequeue(i, score);
        }

        return [.. best.UnorderedItems.Select(e => e.Element)];
    }

    private void Photo(int product, Random random, Span<float> into)
    {
        var own = Direction(random);
        if (_flat)
        {
            Mix(into, (_parts[product % _parts.Length], 1.0f), (own, 0.9f));
            return;
        }

        var brand = product % (Categories * BrandsPerCategory);
        var category = brand / BrandsPerCategory;
        Mix(into, (_parts[0], MathF.Sqrt(0.40f)), (_parts[1 + category], MathF.Sqrt(0.15f)), (_parts[1 + Categories + brand], MathF.Sqrt(0.10f)),
            (_parts[1 + Categories + (Categories * BrandsPerCategory) + product], MathF.Sqrt(0.20f)), (own, MathF.Sqrt(0.15f)));
    }

    private static void Mix(Span<float> into, params (float[] Direction, float Weight)[] parts)
    {
        into.Clear();
        foreach (var (direction, weight) in parts)
        {
            for (var d = 0; d < Dimension; d++) into[d] += direction[d] * weight;
        }

        TensorPrimitives.Divide(into, TensorPrimitives.Norm(into), into);
    }

    /// <summary>A random unit direction (Gaussian coordinates, normalized).</summary>
    private static float[] Direction(Random random)
    {
        var vector = new float[Dimension];
        for (var d = 0; d < Dimension; d++) vector[d] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        TensorPrimitives.Divide(vector, TensorPrimitives.Norm(vector), vector);
        return vector;
    }
}

namespace Fuzz;

/// <summary>One hostile request: its family, a name that says what it is, the bytes, and whether to half-close after sending.</summary>
public sealed record FuzzCase(string Family, string Name, byte[] Request, bool HalfClose = false);

/// <summary>
/// Deterministic hostile requests (same seed, same bytes): real images mutated, images crafted against each
/// decoder, and broken framing, for every route that takes a body. Case i depends only on (seed, i).
/// </summary>
public sealed class HostileCases
{
    private readonly IReadOnlyList<(string Name, byte[] Bytes)> _images;
    private readonly IReadOnlyList<FuzzRoute> _routes;
    private readonly (string Name, Func<byte[]> Make)[] _crafted;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _craftedCache = [];

    /// <param name="seedImages">Real images to mutate (a valid TIFF is added).</param>
    public HostileCases(IReadOnlyList<(string Name, byte[] Bytes)> seedImages, IReadOnlyList<FuzzRoute> routes)
    {
        ArgumentNullException.ThrowIfNull(seedImages);
        _images = [.. seedImages, ("valid.tiff", CraftedImages.ValidTiff())];
        _routes = routes;
        var jpeg = _images.First(i => i.Bytes is [0xFF, 0xD8, ..]).Bytes;
        var png = _images.First(i => i.Bytes is [0x89, (byte)'P', ..]).Bytes;
        _crafted = [.. CraftedImages.All(jpeg, png)];
    }

    /// <summary>Every route of the service that takes a body.</summary>
    public static IReadOnlyList<FuzzRoute> Routes { get; } =
    [
        new MultipartImageRoute("POST", "/embed-image", "file"),
        new MultipartImageRoute("POST", "/embed-images", "files", Files: 3),
        new JsonRoute("POST", "/embed-text", ["{\"text\": \"red leather handbag\"}", "{\"texts\": [\"a photo of a cat\", \"Café crème & croissant\", \"😀\"]}"]),
        new OpenAiRoute("POST", "/v1/embeddings", ["{\"model\": \"clip\", \"input\": \"red shoes\"}",
            "{\"model\": \"clip\", \"input\": [\"a\", \"b\"], \"encoding_format\": \"base64\", \"dimensions\": 64}"]),
        new MultipartImageRoute("PUT", "/items/fuzz-photo", "file", Fields: [("metadata", "{\"brand\": \"acme\", \"tags\": [\"a\", 1]}"), ("product", "P-1"),
            ("text", "Acme runner AJ1-555088")]),
        new JsonRoute("PUT", "/items/fuzz-vector", [$"{{\"vector\": {UnitVector}, \"metadata\": {{\"category\": \"bags\"}}}}", $"{{\"vector\": {UnitVector}}}",
            $"{{\"vector\": {UnitVector}, \"product\": \"P-1\", \"text\": \"Acme runner AJ1-555088 red\"}}"]),
        new MultipartImageRoute("POST", "/search", "file", Fields: [("k", "5"), ("filter", "{\"brand\": \"acme\"}"), ("min_score", "0.1")]),
        new MultipartImageRoute("POST", "/search", "file", Fields: [("text", "but red"), ("text_weight", "-0.4"), ("group_by", "product"), ("group_size", "2"),
            ("mode", "hybrid")]),
        new JsonRoute("POST", "/search", ["{\"text\": \"red leather handbag\", \"k\": 5}", $"{{\"vector\": {UnitVector}, \"filter\": {{\"category\": \"bags\"}}}}",
            "{\"item_id\": \"fuzz-vector\", \"k\": 3, \"min_score\": -1}",
            "{\"text\": \"AJ1-555088 \\\"red runner\\\" -blue or green\", \"mode\": \"hybrid\", \"group_by\": \"product\", \"group_size\": 3}",
            "{\"text\": \"AJ1-555088\", \"mode\": \"keyword\", \"k\": 100, \"group_by\": \"product\", \"group_size\": 10}",
            "{\"item_id\": \"fuzz-vector\", \"k\": 3, \"group_by\": \"product\"}",
            $"{{\"query\": [{{\"item_id\": \"fuzz-vector\"}}, {{\"text\": \"red\", \"weight\": 0.5}}, {{\"vector\": {UnitVector}, \"weight\": -0.25}}, " +
                "{\"image\": \"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\"}], \"k\": 7}"]),
        // Zero-shot labels, and duplicates resolved (the ids the routes above write, so some cases delete for real).
        new MultipartImageRoute("POST", "/classify", "file", Fields: [("labels", "[\"cat\", \"cup\", \"red shoe\"]"), ("templates", "[\"a photo of a {}.\"]")]),
        new JsonRoute("POST", "/classify", ["{\"item_id\": \"fuzz-vector\", \"labels\": [\"handbag\", \"backpack\", \"wallet\"]}",
            $"{{\"vector\": {UnitVector}, \"labels\": [\"red\", \"blue\"], \"templates\": [\"a {{}} product.\", \"a photo of a {{}} thing.\"]}}"]),
        new JsonRoute("POST", "/duplicates/resolve", ["{\"keep\": [\"fuzz-vector\"], \"delete\": [\"fuzz-photo\"]}",
            "{\"keep\": [\"fuzz-photo\", \"fuzz-vector\"], \"delete\": [\"nothing-here\", \"x\"]}"]),
    ];

    /// <summary>A valid 512-dimension vector as JSON.</summary>
    private static string UnitVector => $"[{string.Join(',', Enumerable.Repeat("0.0441941738", 512))}]";

    public static IReadOnlyList<(string Name, byte[] Bytes)> LoadImages(string directory) =>
        [.. Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal).Select(p => (Path.GetFileName(p), File.ReadAllBytes(p)))];

    public IEnumerable<FuzzCase> Generate(int seed, int count)
    {
        for (var i = 0; i < count; i++)
        {
            yield return Case(seed, i);
        }
    }

    /// <summary>Case <paramref name="index"/>: a route, then a family (70% mutated images, 8% crafted, 22% framing).</summary>
    public FuzzCase Case(int seed, int index)
    {
        var random = new Random(HashCode.Combine(seed, index));
        var route = _routes[random.Next(_routes.Count)];
        var roll = random.Next(100);
        if (route.TakesImages && roll < 70)
        {
            var (name, bytes) = _images[random.Next(_images.Count)];
            var (how, mutated) = Mutations.Apply(bytes, random);
            return Wrapped(route, "mutated", $"{name} {how}", mutated, random);
        }

        if (route.TakesImages && roll < 78)
        {
            var (name, make) = _crafted[random.Next(_crafted.Length)];
            var crafted = _craftedCache.GetOrAdd(name, _ => make());
            return Wrapped(route, "crafted", name, crafted, random);
        }

        var breakers = route.Breakers().ToArray();
        var (_, breaker) = breakers[random.Next(breakers.Length)];
        return breaker(_images[random.Next(_images.Count)].Bytes, random);
    }

    private static FuzzCase Wrapped(FuzzRoute route, string family, string name, byte[] payload, Random random)
    {
        var (contentType, body) = route.Wrap(payload, random);
        return new FuzzCase(family, $"{route.Path} {name}", HttpRequests.Build(route.Method, route.Path, contentType, body));
    }
}

/// <summary>Byte-level mutations of a valid file.</summary>
public static class Mutations
{
    public static (string How, byte[] Bytes) Apply(byte[] original, Random random)
    {
        ArgumentNullException.ThrowIfNull(original);
        if (original.Length < 8)
        {
            // Too short for the mutations below (a form field such as "5"): replace it with a few random bytes.
            var noise = new byte[random.Next(0, 9)];
            random.NextBytes(noise);
            return ($"replaced by {noise.Length} random bytes", noise);
        }

        var bytes = (byte[])original.Clone();
        switch (random.Next(6))
        {
            case 0:
                var length = random.Next(0, bytes.Length);
                return ($"truncated to {length}", bytes[..length]);
            case 1:
                var flips = random.Next(1, 65);
                for (var i = 0; i < flips; i++) bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                return ($"{flips} bit flips", bytes);
            case 2:
                var start = random.Next(0, 5);
                var end = Math.Min(bytes.Length, start + random.Next(8, 129));
                random.NextBytes(bytes.AsSpan(start, end - start));
                return ($"header bytes {start}..{end} overwritten", bytes);
            case 3:
                var from = random.Next(bytes.Length);
                var count = random.Next(1, Math.Min(bytes.Length - from, 64 * 1024) + 1);
                var at = random.Next(bytes.Length);
                return ($"slice {from}+{count} duplicated at {at}", [.. bytes.AsSpan(0, at), .. bytes.AsSpan(from, count), .. bytes.AsSpan(at)]);
            case 4:
                var zeroFrom = random.Next(bytes.Length);
                var zeroCount = random.Next(1, Math.Min(bytes.Length - zeroFrom, 4096) + 1);
                bytes.AsSpan(zeroFrom, zeroCount).Clear();
                return ($"zeroed {zeroFrom}+{zeroCount}", bytes);
            default:
                // Interesting values at random places: lengths, sizes and offsets are where decoders break.
                var writes = random.Next(1, 9);
                ReadOnlySpan<uint> values = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF];
                for (var i = 0; i < writes && bytes.Length >= 4; i++)
                {
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(random.Next(bytes.Length - 3)), values[random.Next(values.Length)]);
                }

                return ($"{writes} interesting values", bytes);
        }
    }
}

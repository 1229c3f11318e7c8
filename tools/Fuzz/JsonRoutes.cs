using System.Text;

namespace Fuzz;

/// <summary>A route taking a JSON body: well-formed seed bodies to mutate, and JSON broken in the ways parsers meet.</summary>
public record JsonRoute(string Method, string Path, IReadOnlyList<string> SeedBodies) : FuzzRoute(Method, Path)
{
    public override bool TakesImages => false;

    public override (string ContentType, byte[] Body) Wrap(byte[] payload, Random random) =>
        ("application/json", Encoding.UTF8.GetBytes(SeedBodies[random.Next(SeedBodies.Count)]));

    public override IEnumerable<(string Name, Func<byte[], Random, FuzzCase> Make)> Breakers()
    {
        FuzzCase Json(string name, byte[] body) => new("json", $"{Path} {name}", Post("application/json", body));
        byte[] Seed(Random r) => Encoding.UTF8.GetBytes(SeedBodies[r.Next(SeedBodies.Count)]);

        // Mutated seeds weigh most: they reach the validation behind the parser.
        for (var i = 0; i < 6; i++)
        {
            yield return ("mutated", (_, r) =>
            {
                var (how, bytes) = Mutations.Apply(Seed(r), r);
                return Json($"seed {how}", bytes);
            });
        }

        yield return ("deep-nesting", (_, r) => Json("deep-nesting", Encoding.ASCII.GetBytes(new string('[', 20_000) + new string(']', 20_000))));
        yield return ("deep-objects", (_, r) => Json("deep-objects", Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 5000)) + "1" + new string('}', 5000))));
        yield return ("huge-string", (_, r) => Json("huge-string", Encoding.ASCII.GetBytes($"{{\"text\": \"{new string('x', r.Next(10_001, 400_000))}\", \"input\": \"x\"}}")));
        yield return ("huge-array", (_, r) => Json("huge-array", Encoding.ASCII.GetBytes($"{{\"texts\": [{string.Join(',', Enumerable.Repeat("\"a\"", 5000))}], \"input\": [{string.Join(',', Enumerable.Repeat("\"a\"", 5000))}]}}")));
        yield return ("wrong-types", (_, r) =>
        {
            string[] values = ["null", "true", "1e309", "-0", "[]", "{}", "[[1,2]]", "[null]", "[{\"type\":\"image_url\"}]", "[{\"type\":\"image_url\",\"image_url\":{\"url\":5}}]",
                "\"data:image/png;base64,@@@\"", "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:,x\"}}]", "[{\"type\":\"image_url\",\"image_url\":\"file:///etc/passwd\"}]"];
            string[] keys = ["text", "texts", "input", "model", "encoding_format", "dimensions"];
            return Json("wrong-types", Encoding.UTF8.GetBytes($"{{\"{keys[r.Next(keys.Length)]}\": {values[r.Next(values.Length)]}, \"{keys[r.Next(keys.Length)]}\": {values[r.Next(values.Length)]}}}"));
        });
        yield return ("invalid-utf8", (_, r) => Json("invalid-utf8", [.. "{\"text\": \""u8, 0xC3, 0x28, 0xFF, 0xFE, .. "\", \"input\": \"a\"}"u8]));
        yield return ("lone-surrogates", (_, r) => Json("lone-surrogates", Encoding.ASCII.GetBytes("{\"text\": \"\\ud800\\udfff\\udc00x\\ud83d\", \"input\": \"\\udbff\"}")));
        yield return ("control-characters", (_, r) => Json("control-characters", Encoding.ASCII.GetBytes("{\"text\": \"a\u0000b\u0007\", \"input\": \"\\u0000\"}")));
        yield return ("duplicate-keys", (_, r) => Json("duplicate-keys", Encoding.ASCII.GetBytes("{\"text\": \"a\", \"text\": 5, \"input\": \"a\", \"input\": []}")));
        yield return ("bom-and-trailing", (_, r) => Json("bom-and-trailing", [0xEF, 0xBB, 0xBF, .. Seed(r), .. "garbage"u8]));
        yield return ("empty", (_, r) => Json("empty", []));
        yield return ("form-content-type", (_, r) => Case("form-content-type", Post("application/x-www-form-urlencoded", Encoding.ASCII.GetBytes("text=red+shoes"))));
        foreach (var breaker in HttpBreakers()) yield return breaker;
    }
}

/// <summary>The OpenAI-compatible route: JSON, and images as data URIs, so mutated and crafted images reach it too.</summary>
public sealed record OpenAiRoute(string Method, string Path, IReadOnlyList<string> SeedBodies) : JsonRoute(Method, Path, SeedBodies)
{
    public override bool TakesImages => true;

    public override (string ContentType, byte[] Body) Wrap(byte[] payload, Random random) => ("application/json", Encoding.ASCII.GetBytes(
        $"{{\"model\": \"clip\", \"input\": [\"a photo\", {{\"type\": \"image_url\", \"image_url\": {{\"url\": \"data:image/png;base64,{Convert.ToBase64String(payload)}\"}}}}]}}"));
}

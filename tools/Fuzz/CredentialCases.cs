using System.Text;

namespace Fuzz;

/// <summary>
/// Well-formed requests to every body route carrying credentials in every shape a client (or an attacker) might
/// send: the key right in both headers and odd spacing, wrong, truncated, oversized, binary, duplicated, in another
/// scheme. Case names say whether the key should be accepted ("pass") or not ("refuse").
/// </summary>
public static class CredentialCases
{
    public const string Pass = "pass";
    public const string Refuse = "refuse";

    public static IEnumerable<FuzzCase> Generate(IReadOnlyList<FuzzRoute> routes, byte[] image, string key, int seed, int count)
    {
        ArgumentNullException.ThrowIfNull(routes);
        ArgumentNullException.ThrowIfNull(key);
        var shapes = Shapes(key);
        for (var i = 0; i < count; i++)
        {
            var random = new Random(HashCode.Combine(seed, i));
            var route = routes[random.Next(routes.Count)];
            var (name, headers, accepted) = shapes[random.Next(shapes.Length)];
            var (contentType, body) = route.Wrap(image, random);
            yield return new FuzzCase("credentials", $"{route.Path} {(accepted ? Pass : Refuse)} {name}", Build(route, contentType, body, headers));
        }
    }

    private static (string Name, byte[] Headers, bool Accepted)[] Shapes(string key)
    {
        static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);
        return
        [
            ("bearer", Ascii($"Authorization: Bearer {key}\r\n"), true),
            ("x-api-key", Ascii($"X-API-Key: {key}\r\n"), true),
            ("both headers", Ascii($"Authorization: Bearer {key}\r\nX-API-Key: {key}\r\n"), true),
            ("lower-case names and scheme", Ascii($"authorization: bearer {key}\r\nx-api-key: {key}\r\n"), true),
            ("spaces around the key", Ascii($"X-API-Key:    {key}   \r\n"), true),
            ("no key", [], false),
            ("wrong key", Ascii($"X-API-Key: {key}x\r\n"), false),
            ("key prefix", Ascii($"Authorization: Bearer {key[..^1]}\r\n"), false),
            ("empty bearer", Ascii("Authorization: Bearer \r\n"), false),
            ("scheme only", Ascii("Authorization: Bearer\r\n"), false),
            ("basic scheme", Ascii($"Authorization: Basic {Convert.ToBase64String(Encoding.ASCII.GetBytes(key + ":"))}\r\n"), false),
            ("right bearer, wrong x-api-key", Ascii($"Authorization: Bearer {key}\r\nX-API-Key: nope\r\n"), false),
            ("two x-api-key headers", Ascii($"X-API-Key: {key}\r\nX-API-Key: {key}\r\n"), false),
            ("16 KiB key", Ascii($"X-API-Key: {new string('k', 16 * 1024)}\r\n"), false),
            ("latin-1 bytes", [.. Ascii("X-API-Key: "), .. Encoding.Latin1.GetBytes(key + "\u00e9\u00ff"), .. Ascii("\r\n")], false),
            ("utf-8 bytes", [.. Ascii("Authorization: Bearer "), .. Encoding.UTF8.GetBytes("\u043a\u043b\u044e\u0447\ud83d\udd11"), .. Ascii("\r\n")], false),
            ("control character", Ascii($"X-API-Key: {key}\u0001\r\n"), false),
            ("key in the query string only", [], false),
        ];
    }

    private static byte[] Build(FuzzRoute route, string contentType, byte[] body, byte[] headers)
    {
        var query = headers.Length == 0 ? "?api_key=" + Uri.EscapeDataString("not-read") : string.Empty;
        var head = Encoding.ASCII.GetBytes($"{route.Method} {route.Path}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\n");
        return [.. head, .. headers, .. "\r\n"u8, .. body];
    }
}

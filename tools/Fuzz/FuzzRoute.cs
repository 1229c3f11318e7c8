namespace Fuzz;

/// <summary>A route that takes a body, and how a well-formed body for it carries a payload.</summary>
public abstract record FuzzRoute(string Method, string Path)
{
    /// <summary>Whether the payload is an image (mutated and crafted images are sent to it).</summary>
    public abstract bool TakesImages { get; }

    /// <summary>A well-formed request body carrying <paramref name="payload"/>.</summary>
    public abstract (string ContentType, byte[] Body) Wrap(byte[] payload, Random random);

    /// <summary>Bodies broken in ways particular to this route's format.</summary>
    public abstract IEnumerable<(string Name, Func<byte[], Random, FuzzCase> Make)> Breakers();

    public static string NewBoundary(Random random) => $"fuzz{random.NextInt64():x16}";

    protected FuzzCase Case(string name, byte[] request, bool halfClose = false) => new("framing", $"{Path} {name}", request, halfClose);

    protected byte[] Post(string? contentType, byte[] body, long? length = null, string? headers = null) =>
        HttpRequests.Build(Method, Path, contentType, body, length, headers);

    /// <summary>Broken HTTP around a well-formed body: lying lengths, bad chunking, huge headers, a missing content type.</summary>
    protected IEnumerable<(string Name, Func<byte[], Random, FuzzCase> Make)> HttpBreakers()
    {
        yield return ("truncated-body", (payload, r) =>
        {
            var (type, body) = Wrap(payload, r);
            var request = Post(type, body);
            return Case("truncated-body", request[..(request.Length - r.Next(1, Math.Max(2, body.Length)))], halfClose: true);
        });
        yield return ("no-content-type", (payload, r) => Case("no-content-type", Post(null, Wrap(payload, r).Body)));
        yield return ("content-length-short", (payload, r) =>
        {
            var (type, body) = Wrap(payload, r);
            return Case("content-length-short", Post(type, body, length: r.Next(0, body.Length)));
        });
        yield return ("content-length-huge", (payload, r) =>
        {
            var (type, body) = Wrap(payload, r);
            return Case("content-length-huge", Post(type, body, length: long.MaxValue / 2), halfClose: true);
        });
        yield return ("content-length-invalid", (payload, r) =>
        {
            var (type, body) = Wrap(payload, r);
            return Case("content-length-invalid", [.. System.Text.Encoding.ASCII.GetBytes($"{Method} {Path} HTTP/1.1\r\nHost: x\r\nContent-Type: {type}\r\nContent-Length: -5\r\n\r\n"), .. body]);
        });
        yield return ("chunked-garbage", (payload, r) => Case("chunked-garbage", HttpRequests.Chunked(Method, Path, Wrap(payload, r).ContentType, "zz\r\nhello\r\n0\r\n\r\n")));
        yield return ("huge-request-header", (payload, r) =>
        {
            var (type, body) = Wrap(payload, r);
            return Case("huge-request-header", Post(type, body, headers: $"X-Huge: {new string('h', 64 * 1024)}\r\n"));
        });
    }
}

/// <summary>A multipart route whose file field carries an image, with text fields beside it (mutated at times).</summary>
public sealed record MultipartImageRoute(string Method, string Path, string FileField, int Files = 1, IReadOnlyList<(string Name, string Value)>? Fields = null)
    : FuzzRoute(Method, Path)
{
    public override bool TakesImages => true;

    public override (string ContentType, byte[] Body) Wrap(byte[] payload, Random random)
    {
        var body = new MultipartBody(NewBoundary(random));
        foreach (var (name, value) in Fields ?? [])
        {
            // One time in four a field is mangled: the route's validation of its fields is under test too.
            body.Field(name, random.Next(4) == 0 ? System.Text.Encoding.UTF8.GetString(Mutations.Apply(System.Text.Encoding.UTF8.GetBytes(value), random).Bytes) : value);
        }

        for (var i = 0; i < Files; i++) body.File(FileField, $"image{i}.jpg", payload);
        return (body.ContentType, body.ToArray());
    }

    public override IEnumerable<(string Name, Func<byte[], Random, FuzzCase> Make)> Breakers()
    {
        foreach (var breaker in HttpBreakers()) yield return breaker;
        yield return ("no-closing-boundary", (image, r) =>
        {
            var body = new MultipartBody(NewBoundary(r)).File(FileField, "a.jpg", image);
            return Case("no-closing-boundary", Post(body.ContentType, body.ToArray(close: false)));
        });
        yield return ("wrong-boundary", (image, r) =>
        {
            var body = new MultipartBody(NewBoundary(r)).File(FileField, "a.jpg", image).ToArray();
            return Case("wrong-boundary", Post($"multipart/form-data; boundary={NewBoundary(r)}", body));
        });
        yield return ("body-ends-mid-headers", (image, r) =>
        {
            var boundary = NewBoundary(r);
            var body = System.Text.Encoding.ASCII.GetBytes($"--{boundary}\r\nContent-Disposition: form-data; name=\"{FileField}\"");
            return Case("body-ends-mid-headers", Post($"multipart/form-data; boundary={boundary}", body));
        });
        yield return ("thousands-of-parts", (image, r) =>
        {
            var body = new MultipartBody(NewBoundary(r));
            for (var i = 0; i < 3000; i++) body.Field($"junk{i}", "x");
            body.File(FileField, "a.jpg", image);
            return Case("thousands-of-parts", Post(body.ContentType, body.ToArray()));
        });
        yield return ("header-line-without-end", (image, r) =>
        {
            var boundary = NewBoundary(r);
            var raw = $"--{boundary}\r\nContent-Disposition: form-data; name=\"{FileField}\"; filename=\"{new string('A', 40_000)}";
            return Case("header-line-without-end", Post($"multipart/form-data; boundary={boundary}", System.Text.Encoding.ASCII.GetBytes(raw)));
        });
        yield return ("too-many-part-headers", (image, r) =>
        {
            var body = new MultipartBody(NewBoundary(r));
            body.Raw($"--{body.Boundary}\r\nContent-Disposition: form-data; name=\"{FileField}\"; filename=\"a.jpg\"\r\n");
            for (var i = 0; i < 40; i++) body.Raw($"X-Junk-{i}: {i}\r\n");
            body.Raw("\r\n");
            return Case("too-many-part-headers", Post(body.ContentType, [.. body.ToArray(close: false), .. image, .. "\r\n"u8, .. System.Text.Encoding.ASCII.GetBytes($"--{body.Boundary}--\r\n")]));
        });
        yield return ("wrong-content-type", (image, r) =>
        {
            var (_, body) = Wrap(image, r);
            string[] types = ["text/plain", "application/json", "multipart/mixed; boundary=x", "multipart/form-data", "multipart/form-data; boundary=",
                $"multipart/form-data; boundary={new string('b', 200)}", "application/x-www-form-urlencoded", "image/jpeg", ";;;", "multipart/form-data; boundary=\"unterminated"];
            return Case("wrong-content-type", Post(types[r.Next(types.Length)], body));
        });
        yield return ("lf-only-lines", (image, r) =>
        {
            var boundary = NewBoundary(r);
            byte[] body = [.. System.Text.Encoding.ASCII.GetBytes($"--{boundary}\nContent-Disposition: form-data; name=\"{FileField}\"\n\n"), .. image,
                .. System.Text.Encoding.ASCII.GetBytes($"\n--{boundary}--\n")];
            return Case("lf-only-lines", Post($"multipart/form-data; boundary={boundary}", body));
        });
        yield return ("part-without-disposition", (image, r) =>
        {
            var body = new MultipartBody(NewBoundary(r));
            body.Raw($"--{body.Boundary}\r\nContent-Type: image/jpeg\r\n\r\n");
            return Case("part-without-disposition", Post(body.ContentType, [.. body.ToArray(close: false), .. image, .. System.Text.Encoding.ASCII.GetBytes($"\r\n--{body.Boundary}--\r\n")]));
        });
        yield return ("empty-body", (_, r) => Case("empty-body", Post($"multipart/form-data; boundary={NewBoundary(r)}", [])));
        yield return ("preamble-garbage", (image, r) =>
        {
            var (type, body) = Wrap(image, r);
            var garbage = new byte[r.Next(1, 4096)];
            r.NextBytes(garbage);
            return Case("preamble-garbage", Post(type, [.. garbage, .. "\r\n"u8, .. body]));
        });
    }
}

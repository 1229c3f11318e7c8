using System.Buffers;
using System.Text;

namespace Fuzz;

/// <summary>Raw HTTP/1.1 requests as bytes, so that any part of them can be broken.</summary>
public static class HttpRequests
{
    public static byte[] Build(string method, string path, string? contentType, ReadOnlySpan<byte> body, long? contentLength = null, string? extraHeaders = null)
    {
        var head = new StringBuilder()
            .Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\n")
            .Append("Host: 127.0.0.1\r\n");
        if (contentType is not null) head.Append("Content-Type: ").Append(contentType).Append("\r\n");
        head.Append("Content-Length: ").Append(contentLength ?? body.Length).Append("\r\n");
        if (extraHeaders is not null) head.Append(extraHeaders);
        head.Append("\r\n");
        return [.. Encoding.ASCII.GetBytes(head.ToString()), .. body];
    }

    public static byte[] Chunked(string method, string path, string contentType, string chunkedBody) => Encoding.ASCII.GetBytes(
        $"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {contentType}\r\nTransfer-Encoding: chunked\r\n\r\n{chunkedBody}");
}

/// <summary>A multipart/form-data body under construction.</summary>
public sealed class MultipartBody(string boundary)
{
    private readonly ArrayBufferWriter<byte> _body = new();

    public string Boundary { get; } = boundary;

    public string ContentType => $"multipart/form-data; boundary={Boundary}";

    public MultipartBody File(string field, string fileName, ReadOnlySpan<byte> content, string contentType = "application/octet-stream")
    {
        Write($"--{Boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{fileName}\"\r\nContent-Type: {contentType}\r\n\r\n");
        _body.Write(content);
        Write("\r\n");
        return this;
    }

    public MultipartBody Field(string field, string value)
    {
        Write($"--{Boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n");
        return this;
    }

    public MultipartBody Raw(string text)
    {
        Write(text);
        return this;
    }

    /// <summary>The body; without the closing delimiter when <paramref name="close"/> is false.</summary>
    public byte[] ToArray(bool close = true)
    {
        if (close) Write($"--{Boundary}--\r\n");
        return _body.WrittenSpan.ToArray();
    }

    private void Write(string text) => _body.Write(Encoding.UTF8.GetBytes(text));
}

using EmbeddingService.Limits;

namespace EmbeddingService.Uploads;

/// <summary>One file of a multipart body, in a buffer that goes back on dispose.</summary>
public sealed class UploadedFile(string? fileName, ByteBuffer buffer, int length) : IDisposable
{
    /// <summary>The file name the client gave, if any (only ever shown back to the client).</summary>
    public string? FileName { get; } = fileName;

    public ReadOnlyMemory<byte> Content => buffer.Memory[..length];

    public void Dispose() => buffer.Dispose();
}

/// <summary>The files and text fields of a received multipart body, and the upload memory they hold.</summary>
public sealed class ReceivedForm(ResourceBudget.Lease memory) : IDisposable
{
    private readonly List<UploadedFile> _files = [];
    private readonly Dictionary<string, string> _fields = new(StringComparer.Ordinal);

    public IReadOnlyList<UploadedFile> Files => _files;

    public IReadOnlyDictionary<string, string> Fields => _fields;

    internal ResourceBudget.Lease Memory { get; } = memory;

    internal void Add(UploadedFile file) => _files.Add(file);

    internal void Add(string field, string value) => _fields[field] = value;

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
        _files.Clear();
        Memory.Dispose();
    }
}

/// <summary>What a route accepts in its multipart body.</summary>
/// <param name="FileField">The name of the file parts.</param>
/// <param name="MaxFiles">More file parts than this are refused.</param>
/// <param name="TextFields">Small text fields to keep (others are skipped).</param>
/// <param name="StopAtFirstFile">Stop reading at the first file, as the single-image route always has.</param>
/// <param name="MaxBodyBytes">The whole body's limit, when it is not one file's (MAX_UPLOAD_BYTES).</param>
public sealed record FormSpec(string FileField, int MaxFiles = 1, IReadOnlyList<string>? TextFields = null, bool StopAtFirstFile = false, long? MaxBodyBytes = null)
{
    public IReadOnlyList<string> TextFields { get; init; } = TextFields ?? [];
}

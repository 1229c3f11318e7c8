namespace EmbeddingService.Tests.Support;

/// <summary>The reference data in <c>../shared</c> beside the repository root, used in place.</summary>
public static class SharedData
{
    public const string MissingMessage = "../shared (reference images, model and embeddings) is not beside the repository root; CI always has it";

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string Root { get; } = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));

    public static bool Available => File.Exists(Path.Combine(Root, "README.md"));

    public static string Image(string name) => Path.Combine(Root, "images", name);

    public static string ReferenceModel => Path.Combine(Root, "reference", "model-tiny");

    public static string ReferencePixels(string image) => Path.Combine(Root, "reference", "pixels", image + ".f32");

    /// <summary>A member of <c>reference/family/</c> (<c>tiny-b16</c>, <c>tiny-l14-336</c>): its folder, with <c>model/</c> and the expected embeddings.</summary>
    public static string Family(string member) => Path.Combine(Root, "reference", "family", member);

    /// <summary>Expected embeddings of a JSON-lines file, by its key (<c>image</c> or <c>text</c>).</summary>
    public static Dictionary<string, float[]> Embeddings(string path, string key) => File.ReadLines(path)
        .Select(line => System.Text.Json.JsonDocument.Parse(line).RootElement)
        .ToDictionary(e => e.GetProperty(key).GetString()!, e => e.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray());

    public static string BpeMerges => Path.Combine(Root, "clip", "bpe_simple_vocab_16e6.txt.gz");

    public static IEnumerable<string> ReferenceImages =>
        Directory.EnumerateFiles(Path.Combine(Root, "reference", "pixels"), "*.f32").Select(p => Path.GetFileNameWithoutExtension(p)).Order(StringComparer.Ordinal);

    public static float[] ReadPixels(string image) => ReadFloats(ReferencePixels(image));

    public static float[] ReadFloats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / sizeof(float)];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EmbeddingService.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("EmbeddingService.slnx not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A fact that is skipped, with the reason, when <c>../shared</c> is absent.</summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute()
    {
        if (!SharedData.Available)
        {
            Skip = SharedData.MissingMessage;
        }
    }
}

/// <summary>A theory that is skipped, with the reason, when <c>../shared</c> is absent.</summary>
public sealed class SharedDataTheoryAttribute : TheoryAttribute
{
    public SharedDataTheoryAttribute()
    {
        if (!SharedData.Available)
        {
            Skip = SharedData.MissingMessage;
        }
    }
}

using EmbeddingService.Inference;
using EmbeddingService.Model;
using Microsoft.Extensions.Logging.Abstractions;
using SyntheticModel;

namespace EmbeddingService.Tests.Support;

/// <summary>A generated tiny model (seed 1), made once per test run and shared by the tests that need one.</summary>
public sealed class TinyModelFixture : IDisposable
{
    private readonly TempDirectory _directory = new("tiny-model");

    public TinyModelFixture()
    {
        Generated = ModelDirectoryWriter.Write(ClipArchitecture.Tiny, 1, _directory.Path, SharedData.Available ? SharedData.BpeMerges : null);
    }

    public GeneratedModel Generated { get; }

    public string Directory => _directory.Path;

    public void Dispose() => _directory.Dispose();
}

[CollectionDefinition(Name)]
public sealed class TinyModelGroup : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "tiny model";
}

/// <summary>
/// Tests that measure across the whole test process (its allocations; the metrics, whose exporter listens to every
/// meter of the service's name, so every in-process service's): they run alone, so other tests' counts, which the
/// measurement cannot tell apart, are not in it.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMeasurementGroup : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "process-wide measurements";
}

public static class Models
{
    public static ModelLoader Loader(int threads = 1) =>
        new(new OrtSessionFactory(new InferenceOptions { IntraOpThreads = threads }, NullLogger.Instance));

    public static ClipModel Load(string directory, ModelVariant variant = ModelVariant.Fp32) => Loader().Load(new ModelFiles(directory, variant));

    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => System.Numerics.Tensors.TensorPrimitives.CosineSimilarity(a, b);
}

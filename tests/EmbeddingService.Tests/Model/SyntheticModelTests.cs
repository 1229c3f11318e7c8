using System.Security.Cryptography;
using EmbeddingService.Tests.Support;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using SyntheticModel;
using Onnx.Proto;

namespace EmbeddingService.Tests.Model;

[Collection(TinyModelGroup.Name)]
public sealed class SyntheticModelTests(TinyModelFixture tiny)
{
    [Fact]
    public void Tiny_preset_has_the_reduced_architecture_and_loads()
    {
        using var model = Models.Load(tiny.Directory);
        Assert.Equal(512, model.Vision.Dimension);
        Assert.True(model.Config.IsSynthetic);
        Assert.Contains("SYNTHETIC", model.Config.SyntheticNote, StringComparison.Ordinal);
        Assert.Equal(CountParameters(Path.Combine(tiny.Directory, "onnx", "vision_model.onnx")), tiny.Generated.VisionParameters);
        Assert.Equal(CountParameters(Path.Combine(tiny.Directory, "onnx", "text_model.onnx")), tiny.Generated.TextParameters);
    }

    [Fact]
    public void Same_seed_gives_identical_files_and_another_seed_does_not()
    {
        using var again = new TempDirectory();
        using var other = new TempDirectory();
        ModelDirectoryWriter.Write(ClipArchitecture.Tiny, 1, again.Path, SharedData.Available ? SharedData.BpeMerges : null);
        ModelDirectoryWriter.Write(ClipArchitecture.Tiny, 2, other.Path);
        foreach (var file in Directory.EnumerateFiles(tiny.Directory, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(tiny.Directory, file);
            Assert.Equal(Hash(file), Hash(Path.Combine(again.Path, relative)));
        }

        Assert.NotEqual(Hash(Path.Combine(tiny.Directory, "onnx", "vision_model.onnx")), Hash(Path.Combine(other.Path, "onnx", "vision_model.onnx")));
    }

    [Fact]
    public void Without_bpe_file_the_vocabulary_is_byte_level_below_clip_ids()
    {
        using var directory = new TempDirectory();
        ModelDirectoryWriter.Write(ClipArchitecture.Tiny, 3, directory.Path);
        using var vocabulary = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory.Path, "vocab.json")));
        var ids = vocabulary.RootElement.EnumerateObject().Select(p => p.Value.GetInt32()).ToList();
        Assert.Equal(514, ids.Count);
        Assert.True(ids.Max() < ClipArchitecture.VocabularySize);
        Assert.Equal(ClipArchitecture.EndOfText, vocabulary.RootElement.GetProperty("<|endoftext|>").GetInt32());
        Assert.Equal("#version: 0.2\n", File.ReadAllText(Path.Combine(directory.Path, "merges.txt")));
    }

    [SharedDataFact]
    public void With_bpe_file_the_tokenizer_files_equal_the_reference_exports()
    {
        Assert.Equal(File.ReadAllBytes(Path.Combine(SharedData.ReferenceModel, "merges.txt")), File.ReadAllBytes(Path.Combine(tiny.Directory, "merges.txt")));
        using var expected = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(SharedData.ReferenceModel, "vocab.json")));
        using var actual = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(tiny.Directory, "vocab.json")));
        var expectedMap = expected.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        var actualMap = actual.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        Assert.Equal(49408, actualMap.Count);
        Assert.Equal(expectedMap, actualMap);
    }

    [SharedDataTheory]
    [InlineData("tiny")]
    [InlineData("vit-b32")]
    public void Activations_stay_of_order_one_through_every_layer(string preset)
    {
        var arch = ClipArchitecture.FromPreset(preset);
        var (graph, _) = ClipGraphs.Vision(arch, new WeightSource(1), exposeHiddenStates: true);
        using var session = new InferenceSession(graph.ToByteArray());
        var pixels = SharedData.ReadPixels("astronaut.png");
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, 224, 224]);
        var names = session.OutputMetadata.Keys.Where(k => k.StartsWith("hidden_state_", StringComparison.Ordinal)).ToList();
        Assert.Equal(arch.VisionLayers, names.Count);
        using var outputs = session.Run(new RunOptions(), ["pixel_values"], [input], names);
        foreach (var output in outputs)
        {
            var values = output.GetTensorDataAsSpan<float>();
            var mean = System.Numerics.Tensors.TensorPrimitives.Sum(values) / values.Length;
            var rms = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(values) / values.Length);
            Assert.InRange(rms, 0.3f, 4f);
            Assert.InRange(MathF.Abs(mean), 0f, 1f);
        }
    }

    [SharedDataFact]
    public void Different_images_and_texts_give_clearly_different_embeddings()
    {
        using var model = Models.Load(tiny.Directory);
        var images = new[] { "astronaut.png", "chelsea.png", "coffee.png", "camera.png" }.Select(SharedData.ReadPixels).ToArray();
        var batch = images.SelectMany(p => p).ToArray();
        var embeddings = new float[4 * 512];
        model.Vision.Embed(batch, 4, embeddings);
        for (var i = 0; i < 4; i++)
        {
            for (var j = i + 1; j < 4; j++)
            {
                Assert.InRange(Models.Cosine(embeddings.AsSpan(i * 512, 512), embeddings.AsSpan(j * 512, 512)), -1, 0.97);
            }
        }

        var tokens = new long[2 * 77];
        long[] cat = [49406, 320, 1125, 539, 320, 2368, 49407], shoes = [49406, 736, 2761, 4079, 49407];
        cat.CopyTo(tokens, 0);
        shoes.CopyTo(tokens, 77);
        var texts = new float[2 * 512];
        model.Text.Embed(tokens, 2, texts);
        Assert.InRange(Models.Cosine(texts.AsSpan(0, 512), texts.AsSpan(512, 512)), -1, 0.97);
    }

    /// <summary>The full-size preset: the parameter counts of OpenAI's ViT-B/32, and byte-identical output for a seed.</summary>
    [Fact]
    public void Vit_b32_preset_has_the_real_parameter_counts_runs_and_is_deterministic()
    {
        using var first = new TempDirectory("vitb32");
        var generated = ModelDirectoryWriter.Write(ClipArchitecture.VitB32, 1, first.Path);
        Assert.Equal(87_849_216, generated.VisionParameters);
        Assert.Equal(63_428_096, generated.TextParameters);
        Assert.Equal(87_849_216, CountParameters(Path.Combine(first.Path, "onnx", "vision_model.onnx")));
        Assert.Equal(63_428_096, CountParameters(Path.Combine(first.Path, "onnx", "text_model.onnx")));

        using (var model = Models.Load(first.Path))
        {
            var pixels = new float[2 * model.Vision.ItemLength];
            for (var i = 0; i < pixels.Length; i++) pixels[i] = MathF.Sin(i * (i < model.Vision.ItemLength ? 0.001f : 0.0037f));
            var output = new float[2 * 512];
            model.Vision.Embed(pixels, 2, output);
            Assert.Equal(1f, System.Numerics.Tensors.TensorPrimitives.Norm(output.AsSpan(0, 512)), 4);
            Assert.InRange(Models.Cosine(output.AsSpan(0, 512), output.AsSpan(512, 512)), -1, 0.99);
        }

        using var second = new TempDirectory("vitb32");
        ModelDirectoryWriter.Write(ClipArchitecture.VitB32, 1, second.Path);
        Assert.Equal(Hash(Path.Combine(first.Path, "onnx", "vision_model.onnx")), Hash(Path.Combine(second.Path, "onnx", "vision_model.onnx")));
        Assert.Equal(Hash(Path.Combine(first.Path, "onnx", "text_model.onnx")), Hash(Path.Combine(second.Path, "onnx", "text_model.onnx")));
    }

    /// <summary>
    /// The rest of the family at full size: the parameter counts of OpenAI's ViT-B/16, ViT-L/14 and ViT-L/14@336 (the
    /// graphs are built, not written: L/14 is 1.7 GB; the benchmark writes and runs them).
    /// </summary>
    [Theory]
    [InlineData("vit-b16", 86_192_640, 63_428_096)]
    [InlineData("vit-l14", 303_966_208, 123_650_304)]
    [InlineData("vit-l14-336", 304_293_888, 123_650_304)]
    public void Full_size_presets_have_their_models_parameter_counts(string preset, long vision, long text)
    {
        var arch = ClipArchitecture.FromPreset(preset);
        Assert.Equal(vision, ClipGraphs.Vision(arch, new WeightSource(1)).Parameters);
        Assert.Equal(text, ClipGraphs.Text(arch, new WeightSource(1)).Parameters);
    }

    /// <summary>The tiny presets of the other geometries load, and the service names them from their geometry (their configs name no model).</summary>
    [Theory]
    [InlineData("tiny-b16", "CLIP-ViT-B/16", 512, 224, 16)]
    [InlineData("tiny-l14-336", "CLIP-ViT-L/14@336", 768, 336, 14)]
    public void Tiny_presets_of_each_geometry_load_with_their_dimension_input_and_name(string preset, string name, int dimension, int input, int patch)
    {
        using var directory = new TempDirectory(preset);
        ModelDirectoryWriter.Write(ClipArchitecture.FromPreset(preset), 1, directory.Path);
        using var model = Models.Load(directory.Path);
        Assert.Equal(new EmbeddingService.Model.ModelCard(name, dimension, input, patch), model.Card);
        Assert.Equal(dimension, model.Vision.Dimension);
        Assert.Equal(dimension, model.Text.Dimension);
        Assert.Equal(3 * input * input, model.Vision.ItemLength);
        var output = new float[dimension];
        model.Vision.Embed(new float[model.Vision.ItemLength], 1, output);
        Assert.Equal(1f, System.Numerics.Tensors.TensorPrimitives.Norm(output), 4);
    }

    /// <summary>Parameters are the float initializers of the file, counted from the ONNX protobuf itself.</summary>
    private static long CountParameters(string path)
    {
        using var stream = File.OpenRead(path);
        var model = ModelProto.Parser.WithDiscardUnknownFields(true).ParseFrom(stream);
        return model.Graph.Initializer
            .Where(t => t.DataType == (int)TensorProto.Types.DataType.Float)
            .Sum(t => t.Dims.Aggregate(1L, (a, b) => a * b));
    }

    private static string Hash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }
}

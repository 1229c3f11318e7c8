using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace EmbeddingService.Tests.Model;

[Collection(TinyModelGroup.Name)]
public sealed class ModelLoaderTests(TinyModelFixture tiny)
{
    [SharedDataFact]
    public void Accepts_the_generated_model_and_an_independent_torch_export_and_both_run_to_512()
    {
        using var generated = Models.Load(tiny.Directory);
        using var exported = Models.Load(SharedData.ReferenceModel);
        var pixels = new[] { "chelsea.png", "coffee.png", "logo.png" }.SelectMany(SharedData.ReadPixels).ToArray();
        foreach (var model in new[] { generated, exported })
        {
            var output = new float[3 * 512];
            model.Vision.Embed(pixels, 3, output);
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(1f, System.Numerics.Tensors.TensorPrimitives.Norm(output.AsSpan(i * 512, 512)), 4);
            }
        }

        Assert.True(exported.Config.IsSynthetic);
        Assert.Equal(224, exported.Preprocessor.CropHeight);
        Assert.Equal(0.26862954f, exported.Preprocessor.Std[0]);
    }

    [Fact]
    public void Names_a_directory_that_does_not_exist()
    {
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load("/nonexistent/model-dir"));
        Assert.Contains("/nonexistent/model-dir: model directory does not exist", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("onnx/vision_model.onnx", ModelVariant.Fp32)]
    [InlineData("preprocessor_config.json", ModelVariant.Fp32)]
    [InlineData("onnx/text_model_fp16.onnx", ModelVariant.Fp16)]
    public void Names_each_missing_file(string missing, ModelVariant variant)
    {
        using var copy = Copy();
        var path = Path.Combine(copy.Path, missing);
        if (File.Exists(path)) File.Delete(path);
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path, variant));
        Assert.Contains($"missing {missing}", error.Message.Replace(", ", " missing ", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void Names_a_wrong_output_name()
    {
        using var copy = Copy();
        SmallGraphs.WriteVision(Path.Combine(copy.Path, "onnx", "vision_model.onnx"), outputName: "last_hidden_state");
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("vision_model.onnx: has no output 'image_embeds' (its outputs: last_hidden_state)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_a_wrong_input_name()
    {
        using var copy = Copy();
        SmallGraphs.WriteVision(Path.Combine(copy.Path, "onnx", "vision_model.onnx"), inputName: "images");
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("vision_model.onnx: has no input 'pixel_values' (its inputs: images)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_an_embedding_dimension_other_than_512()
    {
        using var copy = Copy();
        SmallGraphs.WriteVision(Path.Combine(copy.Path, "onnx", "vision_model.onnx"), dimension: 768);
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("output 'image_embeds' has shape [N,768]: the embedding dimension must be 512", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_a_wrong_input_element_type()
    {
        using var copy = Copy();
        SmallGraphs.WriteText(Path.Combine(copy.Path, "onnx", "text_model.onnx"), DataType.Int32);
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("text_model.onnx: input 'input_ids' is Int32, expected Int64", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_a_file_that_is_not_onnx()
    {
        using var copy = Copy();
        File.WriteAllText(Path.Combine(copy.Path, "onnx", "vision_model.onnx"), "<html>rate limited</html>");
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("vision_model.onnx: ONNX Runtime cannot load it", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_an_unsupported_resample_filter()
    {
        using var copy = Copy();
        var path = Path.Combine(copy.Path, "preprocessor_config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"resample\": 3", "\"resample\": 2", StringComparison.Ordinal));
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("preprocessor_config.json: resample is 2, but only 3 (bicubic", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_a_config_that_is_not_json()
    {
        using var copy = Copy();
        File.WriteAllText(Path.Combine(copy.Path, "config.json"), "{ not json");
        var error = Assert.Throws<ModelDirectoryException>(() => Models.Load(copy.Path));
        Assert.Contains("config.json: not a readable model config", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_mean_and_std_from_the_preprocessor_config_rather_than_assuming_them()
    {
        using var copy = Copy();
        var path = Path.Combine(copy.Path, "preprocessor_config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("0.48145466", "0.5", StringComparison.Ordinal));
        using var model = Models.Load(copy.Path);
        Assert.Equal(0.5f, model.Preprocessor.Mean[0]);
    }

    private TempDirectory Copy()
    {
        var copy = new TempDirectory("model-copy");
        SmallGraphs.CopyDirectory(tiny.Directory, copy.Path);
        return copy;
    }
}

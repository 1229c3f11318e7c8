using EmbeddingService.Model;
using EmbeddingService.Tests.Support;

namespace EmbeddingService.Tests.Model;

/// <summary>Which model a directory holds, from its own files; and what MODEL_REPO alone says before they are there.</summary>
public sealed class ModelCardTests
{
    [Theory]
    [InlineData("openai/clip-vit-large-patch14-336", 768, 14, 336, "CLIP-ViT-L/14@336")]
    [InlineData("Xenova/clip-vit-base-patch16", 512, 16, 224, "CLIP-ViT-B/16")]
    [InlineData("openai/clip-vit-base-patch32", 512, 32, 224, "CLIP-ViT-B/32")]
    [InlineData("Xenova/clip-vit-large-patch14/", 768, 14, 224, "CLIP-ViT-L/14")]
    [InlineData(null, 512, 32, 224, "CLIP-ViT-B/32")]
    [InlineData("", 1024, 14, 224, "CLIP-ViT-H/14")]
    [InlineData("laion/CLIP-ViT-H-14-laion2B-s32B-b79K", 1024, 14, 224, "CLIP-ViT-H/14")]
    [InlineData("my-shop/fine-tuned-clip", 640, 16, 256, "CLIP-ViT-640d/16@256")]
    [InlineData(null, 768, 0, 336, "CLIP-ViT-L@336")]
    public void The_name_is_the_configs_openai_name_else_the_geometrys(string? nameOrPath, int dimension, int patch, int input, string expected)
    {
        Assert.Equal(expected, ModelCard.NameOf(nameOrPath, dimension, patch, input));
    }

    [Fact]
    public void Without_config_files_an_openai_repository_names_the_model_and_its_dimension()
    {
        using var empty = new TempDirectory("no-model");
        Assert.Equal(new ModelCard("CLIP-ViT-L/14@336", 768, 336, 14),
            ModelCard.TryExpected(new ModelOptions { ModelDir = empty.Path, Repository = "Xenova/clip-vit-large-patch14-336" }));
        Assert.Equal(new ModelCard(ModelCard.DefaultName, 512, 224, 32), ModelCard.TryExpected(new ModelOptions { ModelDir = empty.Path }));
        var options = new ModelOptions { ModelDir = empty.Path, Repository = "my-shop/fine-tuned-clip" };
        Assert.Null(ModelCard.TryExpected(options));
        Assert.Contains("which model the vectors are from", Assert.Throws<ModelDirectoryException>(() => ModelCard.Expected(options)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_default_model_directory_follows_the_repository()
    {
        Assert.EndsWith(Path.Combine("embedding-service", "clip-vit-base-patch32"), new ModelOptions().Directory, StringComparison.Ordinal);
        Assert.EndsWith(Path.Combine("embedding-service", "clip-vit-large-patch14-336"),
            new ModelOptions { Repository = "Xenova/clip-vit-large-patch14-336" }.Directory, StringComparison.Ordinal);
        Assert.Equal("/models/mine", new ModelOptions { ModelDir = "/models/mine", Repository = "Xenova/clip-vit-large-patch14" }.Directory);
    }

    [SharedDataFact]
    public void A_config_whose_input_size_is_not_the_preprocessors_is_refused_with_both_numbers()
    {
        using var copy = TempDirectory.CopyOf(Path.Combine(SharedData.Family("tiny-l14-336"), "model"));
        var config = Path.Combine(copy.Path, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"image_size\": 336", "\"image_size\": 224", StringComparison.Ordinal));
        var error = Assert.Throws<ModelDirectoryException>(() => ModelCard.Read(new ModelFiles(copy.Path, ModelVariant.Fp32)));
        Assert.Contains("vision_config.image_size is 224, but preprocessor_config.json crops to 336", error.Message, StringComparison.Ordinal);
    }
}

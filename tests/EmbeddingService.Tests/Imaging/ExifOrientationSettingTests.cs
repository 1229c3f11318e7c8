using System.Net.Http.Json;
using System.Text.Json;
using EmbeddingService.Tests.Api;
using EmbeddingService.Tests.Support;
using Xunit.Abstractions;

namespace EmbeddingService.Tests.Imaging;

/// <summary>
/// EXIF_ORIENTATION: "apply" (the default) embeds a rotated phone photo upright, as CLIP's reference pipeline does;
/// "ignore" embeds its stored pixels, as a Pillow service built on Image.open(...).convert("RGB") did
/// (../shared/reference/no-exif is that service's vector).
/// </summary>
public sealed class ExifOrientationSettingTests(ITestOutputHelper output)
{
    private const string Photo = "chelsea-exif6.jpg";

    [SharedDataTheory]
    [InlineData("apply")]
    [InlineData("ignore")]
    public async Task Each_setting_gives_the_reference_vector_of_the_pipeline_it_matches(string setting)
    {
        await using var factory = new ServiceFactory(new Dictionary<string, string>
        {
            ["MODEL_DIR"] = SharedData.ReferenceModel,
            ["MODEL_AUTO_DOWNLOAD"] = "false",
            ["EXIF_ORIENTATION"] = setting,
        });
        using var client = await factory.ReadyClientAsync();
        using var response = await client.PostAsync(new Uri("/embed-image", UriKind.Relative), ServiceFactory.Form(File.ReadAllBytes(SharedData.Image(Photo))));
        response.EnsureSuccessStatusCode();
        var embedding = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();

        var upright = Reference(Path.Combine(SharedData.Root, "reference", "image-embeddings.jsonl"));
        var stored = Reference(Path.Combine(SharedData.Root, "reference", "no-exif", "image-embeddings.jsonl"));
        var (toUpright, toStored) = (1 - Models.Cosine(upright, embedding), 1 - Models.Cosine(stored, embedding));
        output.WriteLine($"{setting}: 1 - cos to the upright reference {toUpright:E2}, to the stored-pixels reference {toStored:E2}");
        Assert.InRange(setting == "apply" ? toUpright : toStored, -1e-6, 1e-5);
        Assert.True((setting == "apply" ? toStored : toUpright) > 1e-3, "the two references are apart: the setting must choose one");
    }

    [SharedDataFact]
    public void Stored_pixels_match_the_reference_preprocessing_without_transposing()
    {
        var settings = EmbeddingService.Model.PreprocessorSettings.Read(Path.Combine(SharedData.ReferenceModel, "preprocessor_config.json"));
        var decoder = new EmbeddingService.Imaging.ImageDecoder(new EmbeddingService.Imaging.ImagingOptions());
        var preprocessor = new EmbeddingService.Imaging.ClipImagePreprocessor(settings);
        using var stored = decoder.DecodeStored(File.ReadAllBytes(SharedData.Image(Photo)), settings.ShortestEdge, out var orientation);
        Assert.Equal(6, orientation);
        var pixels = new float[preprocessor.OutputLength];
        preprocessor.Preprocess(stored, pixels);
        var expected = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(
            File.ReadAllBytes(Path.Combine(SharedData.Root, "reference", "no-exif", "pixels", Photo + ".f32"))).ToArray();
        var (max, mean) = ReferencePipelineTests.Differences(expected, pixels);
        Assert.InRange(max, 0, 0.02);
        Assert.InRange(mean, 0, 0.002);
    }

    private static float[] Reference(string file) => File.ReadLines(file)
        .Select(line => JsonDocument.Parse(line).RootElement)
        .Single(e => e.GetProperty("image").GetString() == Photo)
        .GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray();
}

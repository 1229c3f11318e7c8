using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;

namespace SyntheticModel;

public sealed record GeneratedModel(string Directory, long VisionParameters, long TextParameters, TimeSpan Elapsed);

/// <summary>Writes a complete model directory in the layout of <c>Xenova/clip-vit-base-patch32</c>.</summary>
public static class ModelDirectoryWriter
{
    /// <param name="variants">Also write these variants (<c>quantized</c>, <c>fp16</c>) with the service's own rewriters.</param>
    public static GeneratedModel Write(ClipArchitecture arch, ulong seed, string directory, string? bpeMergesGzip = null, IReadOnlyCollection<string>? variants = null)
    {
        ArgumentNullException.ThrowIfNull(arch);
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(Path.Combine(directory, "onnx"));
        var weights = new WeightSource(seed);

        var merges = bpeMergesGzip is null ? [] : ClipVocabulary.ReadMerges(bpeMergesGzip);
        WriteJson(Path.Combine(directory, "vocab.json"), w =>
        {
            w.WriteStartObject();
            foreach (var (token, id) in ClipVocabulary.Vocabulary(merges)) w.WriteNumber(token, id);
            w.WriteEndObject();
        });
        WriteText(Path.Combine(directory, "merges.txt"), "#version: 0.2\n" + string.Concat(merges.Select(m => m + "\n")));
        WriteJson(Path.Combine(directory, "tokenizer_config.json"), w =>
        {
            w.WriteStartObject();
            w.WriteNumber("model_max_length", ClipArchitecture.ContextLength);
            w.WriteString("bos_token", ClipVocabulary.StartToken);
            w.WriteString("eos_token", ClipVocabulary.EndToken);
            w.WriteString("pad_token", ClipVocabulary.EndToken);
            w.WriteString("unk_token", ClipVocabulary.EndToken);
            w.WriteBoolean("do_lower_case", true);
            w.WriteString("tokenizer_class", "CLIPTokenizer");
            w.WriteEndObject();
        });
        WriteJson(Path.Combine(directory, "preprocessor_config.json"), w => WritePreprocessorConfig(w, arch.ImageSize));
        WriteJson(Path.Combine(directory, "config.json"), w => WriteModelConfig(w, arch, seed, bpeMergesGzip is not null));

        var (vision, visionParameters) = ClipGraphs.Vision(arch, weights);
        WriteModel(Path.Combine(directory, "onnx", "vision_model.onnx"), vision);
        var (text, textParameters) = ClipGraphs.Text(arch, weights);
        WriteModel(Path.Combine(directory, "onnx", "text_model.onnx"), text);
        foreach (var variant in variants ?? [])
        {
            foreach (var (tower, graph) in new[] { ("vision", vision), ("text", text) })
            {
                var copy = graph.Clone();
                Onnx.VariantRewriter.Rewrite(copy, variant);
                WriteModel(Path.Combine(directory, "onnx", $"{tower}_model_{variant}.onnx"), copy);
            }
        }

        return new GeneratedModel(directory, visionParameters, textParameters, clock.Elapsed);
    }

    private static void WriteModelConfig(Utf8JsonWriter w, ClipArchitecture arch, ulong seed, bool realTokenizer)
    {
        w.WriteStartObject();
        // As a Hugging Face export's config names its model; the tiny presets name none (the service then names them by geometry).
        if (arch.HubName is { } hubName) w.WriteString("_name_or_path", hubName);
        w.WriteString("model_type", "clip");
        w.WriteNumber("projection_dim", arch.EmbeddingDimension);
        w.WriteStartObject("vision_config");
        w.WriteNumber("hidden_size", arch.VisionWidth);
        w.WriteNumber("intermediate_size", 4 * arch.VisionWidth);
        w.WriteNumber("num_hidden_layers", arch.VisionLayers);
        w.WriteNumber("num_attention_heads", arch.VisionHeads);
        w.WriteNumber("patch_size", arch.PatchSize);
        w.WriteNumber("image_size", arch.ImageSize);
        w.WriteString("hidden_act", "quick_gelu");
        w.WriteEndObject();
        w.WriteStartObject("text_config");
        w.WriteNumber("hidden_size", arch.TextWidth);
        w.WriteNumber("intermediate_size", 4 * arch.TextWidth);
        w.WriteNumber("num_hidden_layers", arch.TextLayers);
        w.WriteNumber("num_attention_heads", arch.TextHeads);
        w.WriteNumber("vocab_size", ClipArchitecture.VocabularySize);
        w.WriteNumber("max_position_embeddings", ClipArchitecture.ContextLength);
        w.WriteNumber("bos_token_id", ClipArchitecture.StartOfText);
        w.WriteNumber("eos_token_id", ClipArchitecture.EndOfText);
        w.WriteNumber("pad_token_id", ClipArchitecture.EndOfText);
        w.WriteString("hidden_act", "quick_gelu");
        w.WriteEndObject();
        // The key the service looks for; the shared reference export uses it too.
        w.WriteString("_synthetic",
            $"SYNTHETIC random weights (preset {arch.Name}, seed {seed}, {(realTokenizer ? "CLIP" : "byte-level")} tokenizer): not OpenAI CLIP, embeddings carry no meaning");
        w.WriteEndObject();
    }

    private static void WritePreprocessorConfig(Utf8JsonWriter w, int imageSize)
    {
        w.WriteStartObject();
        w.WriteStartObject("crop_size");
        w.WriteNumber("height", imageSize);
        w.WriteNumber("width", imageSize);
        w.WriteEndObject();
        w.WriteBoolean("do_center_crop", true);
        w.WriteBoolean("do_convert_rgb", true);
        w.WriteBoolean("do_normalize", true);
        w.WriteBoolean("do_rescale", true);
        w.WriteBoolean("do_resize", true);
        w.WriteString("feature_extractor_type", "CLIPFeatureExtractor");
        w.WriteStartArray("image_mean");
        foreach (var value in new[] { 0.48145466, 0.4578275, 0.40821073 }) w.WriteNumberValue(value);
        w.WriteEndArray();
        w.WriteStartArray("image_std");
        foreach (var value in new[] { 0.26862954, 0.26130258, 0.27577711 }) w.WriteNumberValue(value);
        w.WriteEndArray();
        w.WriteNumber("resample", 3);
        w.WriteNumber("rescale_factor", 1 / 255.0);
        w.WriteStartObject("size");
        w.WriteNumber("shortest_edge", imageSize);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteModel(string path, IMessage model)
    {
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            model.WriteTo(stream);
        }

        File.Move(temporary, path, overwrite: true);
    }

    private static void WriteJson(string path, Action<Utf8JsonWriter> write)
    {
        using var stream = File.Create(path);
        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        write(writer);
    }

    private static void WriteText(string path, string text) => File.WriteAllText(path, text);
}

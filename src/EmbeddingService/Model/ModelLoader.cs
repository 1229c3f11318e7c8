using EmbeddingService.Inference;
using EmbeddingService.Tokenization;
using Microsoft.ML.OnnxRuntime;

namespace EmbeddingService.Model;

/// <summary>Opens a model directory and checks every file against the contract before anything runs on it.</summary>
public sealed class ModelLoader(OrtSessionFactory sessions)
{
    public ClipModel Load(ModelFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (!Directory.Exists(files.Root))
        {
            throw new ModelDirectoryException($"{files.Root}: model directory does not exist.");
        }

        var missing = files.Missing();
        if (missing.Count > 0)
        {
            throw new ModelDirectoryException(
                $"{files.Root}: missing {string.Join(", ", missing)} (a model directory has the layout of Xenova/clip-vit-base-patch32, variant {files.Variant}).");
        }

        var config = ModelConfig.Read(files.PathOf(ModelFiles.Config));
        var preprocessor = PreprocessorSettings.Read(files.PathOf(ModelFiles.PreprocessorConfig));
        var card = ModelCard.From(config, preprocessor, files.PathOf(ModelFiles.Config));
        EmbeddingTower? vision = null, text = null;
        var device = "cpu";
        try
        {
            if (files.Towers.HasFlag(ModelTowers.Vision))
            {
                (vision, device) = Open(files.VisionModel, files.Variant, ModelTowers.Vision, TowerSignature.Vision(preprocessor.CropHeight, preprocessor.CropWidth, card.Dimension));
                Probe(files.VisionModel, () => vision.Embed(new float[vision.ItemLength], 1, new float[vision.Dimension]));
            }

            ClipTokenizer? tokenizer = null;
            if (files.Towers.HasFlag(ModelTowers.Text))
            {
                tokenizer = LoadTokenizer(files);
                (text, device) = Open(files.TextModel, files.Variant, ModelTowers.Text, TowerSignature.Text(ClipModel.ContextLength, card.Dimension));
                var tokens = new long[text.ItemLength];
                tokenizer.Encode(string.Empty, tokens);
                Probe(files.TextModel, () => text.Embed(tokens, 1, new float[text.Dimension]));
            }

            return new ClipModel(files, config, card, preprocessor, vision, text, tokenizer, device);
        }
        catch
        {
            vision?.Dispose();
            text?.Dispose();
            throw;
        }
    }

    private static ClipTokenizer LoadTokenizer(ModelFiles files)
    {
        try
        {
            return ClipTokenizer.Load(files.PathOf(ModelFiles.Vocabulary), files.PathOf(ModelFiles.Merges));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException or IOException)
        {
            throw new ModelDirectoryException($"{files.Root}: the tokenizer files ({ModelFiles.Vocabulary}, {ModelFiles.Merges}) cannot be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// Runs one item through a tower: it proves symbolic output shapes really are [N, projection_dim] and takes the
    /// first-run cost off the first request.
    /// </summary>
    private static void Probe(string path, Action run)
    {
        try
        {
            run();
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelDirectoryException($"{path}: a test inference failed, so its output is not [N, projection_dim] ({e.Message.Trim()}).", e);
        }
    }

    private (EmbeddingTower Tower, string Device) Open(string path, ModelVariant variant, ModelTowers tower, TowerSignature signature)
    {
        InferenceSession session;
        string device;
        try
        {
            (session, device) = sessions.Create(path, variant, tower);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelDirectoryException($"{path}: ONNX Runtime cannot load it ({e.Message.Trim()}).", e);
        }

        try
        {
            return (new EmbeddingTower(session, signature, path) { Workers = sessions.LayoutFor(variant, tower).Workers }, device);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }
}

using EmbeddingService.Inference;
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
        if (config.ProjectionDimension != 512)
        {
            throw new ModelDirectoryException($"{files.PathOf(ModelFiles.Config)}: projection_dim is {config.ProjectionDimension}, but CLIP ViT-B/32 embeddings have 512 dimensions.");
        }

        var preprocessor = PreprocessorSettings.Read(files.PathOf(ModelFiles.PreprocessorConfig));
        var (vision, device) = Open(files.VisionModel, TowerSignature.Vision(preprocessor.CropHeight, preprocessor.CropWidth));
        try
        {
            var (text, _) = Open(files.TextModel, TowerSignature.Text(ClipModel.ContextLength));
            var model = new ClipModel(files, config, preprocessor, vision, text, device);
            try
            {
                Warmup(model);
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        catch
        {
            vision.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs one item through each tower: it proves symbolic output shapes really are [N,512] and takes the
    /// first-run cost off the first request.
    /// </summary>
    private static void Warmup(ClipModel model)
    {
        var output = new float[model.Vision.Dimension];
        Probe(model.Files.VisionModel, () => model.Vision.Embed(new float[model.Vision.ItemLength], 1, output));
        var tokens = new long[model.Text.ItemLength];
        tokens[0] = 49406;
        tokens[1] = 49407;
        Probe(model.Files.TextModel, () => model.Text.Embed(tokens, 1, output));
    }

    private static void Probe(string path, Action run)
    {
        try
        {
            run();
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelDirectoryException($"{path}: a test inference failed, so its output is not [N,512] ({e.Message.Trim()}).", e);
        }
    }

    private (EmbeddingTower Tower, string Device) Open(string path, TowerSignature signature)
    {
        InferenceSession session;
        string device;
        try
        {
            (session, device) = sessions.Create(path);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelDirectoryException($"{path}: ONNX Runtime cannot load it ({e.Message.Trim()}).", e);
        }

        try
        {
            return (new EmbeddingTower(session, signature, path), device);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }
}

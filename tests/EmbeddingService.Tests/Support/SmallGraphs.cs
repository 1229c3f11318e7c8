using Google.Protobuf;
using SyntheticModel;
using Onnx.Proto;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace EmbeddingService.Tests.Support;

/// <summary>Tiny, deliberately wrong ONNX models for the loader's error paths.</summary>
public static class SmallGraphs
{
    public static void WriteVision(string path, string inputName = "pixel_values", string outputName = "image_embeds", int dimension = 512)
    {
        var g = new OnnxGraphBuilder("bad_vision");
        g.Input(inputName, DataType.Float, "batch", 3, 224, 224);
        var pooled = g.Node("GlobalAveragePool", [inputName]);
        var flat = g.Node("Flatten", [pooled], OnnxGraphBuilder.IntAttr("axis", 1));
        var weight = g.Weight("w", new WeightSource(1).Uniform("w", 3 * dimension, 1), 3, dimension);
        g.NodeNamed("MatMul", outputName, [flat, weight]);
        g.Output(outputName, DataType.Float, "batch", dimension);
        Save(path, g);
    }

    public static void WriteText(string path, DataType inputType)
    {
        var g = new OnnxGraphBuilder("bad_text");
        g.Input("input_ids", inputType, "batch", 77);
        var asFloat = g.Node("Cast", ["input_ids"], OnnxGraphBuilder.IntAttr("to", (long)DataType.Float));
        var weight = g.Weight("w", new WeightSource(1).Uniform("w", 77 * 512, 1), 77, 512);
        g.NodeNamed("MatMul", "text_embeds", [asFloat, weight]);
        g.Output("text_embeds", DataType.Float, "batch", 512);
        Save(path, g);
    }

    public static void CopyDirectory(string source, string destination)
    {
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    private static void Save(string path, OnnxGraphBuilder g)
    {
        var model = new ModelProto { IrVersion = 8, Graph = g.Graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = ClipGraphs.Opset });
        File.WriteAllBytes(path, model.ToByteArray());
    }
}

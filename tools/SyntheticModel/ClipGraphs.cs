using Onnx.Proto;
using static SyntheticModel.OnnxGraphBuilder;
using DataType = Onnx.Proto.TensorProto.Types.DataType;

namespace SyntheticModel;

/// <summary>
/// The two CLIP towers as ONNX graphs (opset 17), with the tensor names, shapes and pooling of the
/// Hugging Face / transformers.js export.
/// </summary>
public static class ClipGraphs
{
    public const int Opset = 17;
    private const float LayerNormEpsilon = 1e-5f;

    /// <summary>
    /// Class and position embeddings are the same for every input; kept small beside the unit-scale patch and
    /// token embeddings so that the input, not the constants, decides the output.
    /// </summary>
    private const double ConstantEmbeddingStd = 0.1;

    /// <summary>
    /// Query and key weights are scaled up so attention logits have a spread of a few units: attention then
    /// picks out tokens instead of averaging them all, which would leave mostly an image's mean colour.
    /// </summary>
    private static readonly double AttentionSharpness = Math.Sqrt(3);

    /// <summary>
    /// Builds <c>pixel_values</c> [N,3,S,S] -> <c>image_embeds</c> [N,D] (S the input size, D the embedding dimension).
    /// With <paramref name="exposeHiddenStates"/> every layer's residual stream is an extra output, for checks.
    /// </summary>
    public static (ModelProto Model, long Parameters) Vision(ClipArchitecture arch, WeightSource weights, bool exposeHiddenStates = false)
    {
        var g = new OnnxGraphBuilder("clip_vision");
        var width = arch.VisionWidth;
        var patches = arch.PatchesPerSide * arch.PatchesPerSide;
        var patchFanIn = 3 * arch.PatchSize * arch.PatchSize;
        g.Input("pixel_values", DataType.Float, "batch_size", 3, arch.ImageSize, arch.ImageSize);

        var convWeight = g.Weight("vision.patch_embedding.weight",
            weights.Uniform("vision.patch_embedding.weight", (long)width * patchFanIn, 1 / Math.Sqrt(patchFanIn)),
            width, 3, arch.PatchSize, arch.PatchSize);
        var patchMap = g.Node("Conv", ["pixel_values", convWeight],
            IntsAttr("kernel_shape", arch.PatchSize, arch.PatchSize),
            IntsAttr("strides", arch.PatchSize, arch.PatchSize));
        var flat = g.Node("Reshape", [patchMap, g.ConstInt64(0, width, -1)]);
        var tokens = g.Node("Transpose", [flat], IntsAttr("perm", 0, 2, 1));

        var classEmbedding = g.Weight("vision.class_embedding", weights.Uniform("vision.class_embedding", width, ConstantEmbeddingStd), width);
        var batch = g.Node("Shape", ["pixel_values"], IntAttr("start", 0), IntAttr("end", 1));
        var classShape = g.Node("Concat", [batch, g.ConstInt64(1, width)], IntAttr("axis", 0));
        var classToken = g.Node("Expand", [classEmbedding, classShape]);
        var sequence = g.Node("Concat", [classToken, tokens], IntAttr("axis", 1));
        var positions = g.Weight("vision.position_embedding",
            weights.Uniform("vision.position_embedding", (long)(patches + 1) * width, ConstantEmbeddingStd), patches + 1, width);
        var x = g.Node("Add", [sequence, positions]);
        x = LayerNorm(g, weights, "vision.pre_layrnorm", x, width);

        x = Encoder(g, weights, "vision.encoder", x, width, arch.VisionLayers, arch.VisionHeads, causalMask: null, exposeHiddenStates);

        var classState = g.Node("Gather", [x, g.ConstScalarInt64(0)], IntAttr("axis", 1));
        var pooled = LayerNorm(g, weights, "vision.post_layernorm", classState, width);
        Projection(g, weights, "visual_projection", pooled, width, arch.EmbeddingDimension, "image_embeds");
        g.Output("image_embeds", DataType.Float, "batch_size", arch.EmbeddingDimension);
        return (Wrap(g.Graph), g.ParameterCount);
    }

    /// <summary>
    /// Builds <c>input_ids</c> int64 [N, sequence_length <= 77] -> <c>text_embeds</c> [N,D], pooled at the highest
    /// id. As the Hugging Face / Xenova exports, position embeddings and the causal mask are sliced to the input's
    /// length, so a short text costs a fraction of a 77-token one.
    /// </summary>
    public static (ModelProto Model, long Parameters) Text(ClipArchitecture arch, WeightSource weights, bool exposeHiddenStates = false)
    {
        var g = new OnnxGraphBuilder("clip_text");
        var width = arch.TextWidth;
        const int context = ClipArchitecture.ContextLength;
        g.Input("input_ids", DataType.Int64, "batch_size", "sequence_length");
        var length = g.Node("Shape", ["input_ids"], IntAttr("start", 1), IntAttr("end", 2));

        var tokenTable = g.Weight("text.token_embedding.weight",
            weights.Uniform("text.token_embedding.weight", (long)ClipArchitecture.VocabularySize * width, 1.0),
            ClipArchitecture.VocabularySize, width);
        var tokens = g.Node("Gather", [tokenTable, "input_ids"], IntAttr("axis", 0));
        var positions = g.Weight("text.position_embedding.weight",
            weights.Uniform("text.position_embedding.weight", (long)context * width, ConstantEmbeddingStd), context, width);
        var x = g.Node("Add", [tokens, g.Node("Slice", [positions, g.ConstInt64(0), length, g.ConstInt64(0)])]);

        var mask = new float[context * context];
        for (var row = 0; row < context; row++)
        {
            for (var column = row + 1; column < context; column++)
            {
                mask[(row * context) + column] = float.NegativeInfinity;
            }
        }

        var causalMask = g.Node("Slice", [g.ConstFloat(mask, context, context), g.ConstInt64(0, 0), g.Node("Concat", [length, length], IntAttr("axis", 0)), g.ConstInt64(0, 1)]);
        x = Encoder(g, weights, "text.encoder", x, width, arch.TextLayers, arch.TextHeads, causalMask, exposeHiddenStates);
        x = LayerNorm(g, weights, "text.final_layer_norm", x, width);

        // CLIP pools at <|endoftext|>, which has the highest id in the vocabulary.
        var endPosition = g.Node("ArgMax", ["input_ids"], IntAttr("axis", -1), IntAttr("keepdims", 1));
        var pooled = g.Node("GatherND", [x, endPosition], IntAttr("batch_dims", 1));
        Projection(g, weights, "text_projection", pooled, width, arch.EmbeddingDimension, "text_embeds");
        g.Output("text_embeds", DataType.Float, "batch_size", arch.EmbeddingDimension);
        return (Wrap(g.Graph), g.ParameterCount);
    }

    private static string Encoder(OnnxGraphBuilder g, WeightSource weights, string prefix, string x, int width, int layers, int heads,
        string? causalMask, bool exposeHiddenStates)
    {
        // Residual branches are scaled down by sqrt(2 * layers) so the stream stays of order 1 at any depth.
        var residualScale = 1 / Math.Sqrt(2.0 * layers);
        for (var layer = 0; layer < layers; layer++)
        {
            var p = $"{prefix}.layers.{layer}";
            var h = LayerNorm(g, weights, $"{p}.layer_norm1", x, width);
            var attention = SelfAttention(g, weights, $"{p}.self_attn", h, width, heads, causalMask, residualScale);
            x = g.Node("Add", [x, attention]);
            h = LayerNorm(g, weights, $"{p}.layer_norm2", x, width);
            h = Linear(g, weights, $"{p}.mlp.fc1", h, width, 4 * width, 1 / Math.Sqrt(width));
            h = QuickGelu(g, h);
            h = Linear(g, weights, $"{p}.mlp.fc2", h, 4 * width, width, residualScale / Math.Sqrt(4 * width));
            x = g.NodeNamed("Add", exposeHiddenStates ? $"hidden_state_{layer}" : $"{p}.output", [x, h]);
            if (exposeHiddenStates)
            {
                g.Output(x, DataType.Float);
            }
        }

        return x;
    }

    private static string SelfAttention(OnnxGraphBuilder g, WeightSource weights, string prefix, string h, int width, int heads,
        string? causalMask, double outputScale)
    {
        var headDim = width / heads;
        var std = 1 / Math.Sqrt(width);
        var splitShape = g.ConstInt64(0, 0, heads, headDim);
        string Heads(string name, double scale, params long[] perm) =>
            g.Node("Transpose", [g.Node("Reshape", [Linear(g, weights, $"{prefix}.{name}", h, width, width, scale), splitShape])], IntsAttr("perm", perm));

        var q = Heads("q_proj", AttentionSharpness * std, 0, 2, 1, 3);
        var kT = Heads("k_proj", AttentionSharpness * std, 0, 2, 3, 1);
        var v = Heads("v_proj", std, 0, 2, 1, 3);
        var scores = g.Node("Mul", [g.Node("MatMul", [q, kT]), g.ConstScalarFloat((float)(1 / Math.Sqrt(headDim)))]);
        if (causalMask is not null)
        {
            scores = g.Node("Add", [scores, causalMask]);
        }

        var probabilities = g.Node("Softmax", [scores], IntAttr("axis", -1));
        var context = g.Node("Transpose", [g.Node("MatMul", [probabilities, v])], IntsAttr("perm", 0, 2, 1, 3));
        var merged = g.Node("Reshape", [context, g.ConstInt64(0, 0, width)]);
        return Linear(g, weights, $"{prefix}.out_proj", merged, width, width, outputScale * std);
    }

    private static string Linear(OnnxGraphBuilder g, WeightSource weights, string prefix, string x, int inputs, int outputs, double std)
    {
        var weight = g.Weight($"{prefix}.weight", weights.Uniform($"{prefix}.weight", (long)inputs * outputs, std), inputs, outputs);
        var bias = g.Weight($"{prefix}.bias", weights.Uniform($"{prefix}.bias", outputs, 0.02), outputs);
        return g.Node("Add", [g.Node("MatMul", [x, weight]), bias]);
    }

    private static void Projection(OnnxGraphBuilder g, WeightSource weights, string name, string x, int width, int dimension, string output)
    {
        var weight = g.Weight($"{name}.weight",
            weights.Uniform($"{name}.weight", (long)width * dimension, 1 / Math.Sqrt(width)),
            width, dimension);
        g.NodeNamed("MatMul", output, [x, weight]);
    }

    private static string QuickGelu(OnnxGraphBuilder g, string x) =>
        g.Node("Mul", [x, g.Node("Sigmoid", [g.Node("Mul", [x, g.ConstScalarFloat(1.702f)])])]);

    private static string LayerNorm(OnnxGraphBuilder g, WeightSource weights, string prefix, string x, int width)
    {
        var scale = g.Weight($"{prefix}.weight", weights.Uniform($"{prefix}.weight", width, 0.02, mean: 1.0), width);
        var bias = g.Weight($"{prefix}.bias", weights.Uniform($"{prefix}.bias", width, 0.02), width);
        return g.Node("LayerNormalization", [x, scale, bias], IntAttr("axis", -1), FloatAttr("epsilon", LayerNormEpsilon));
    }

    private static ModelProto Wrap(GraphProto graph)
    {
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "EmbeddingService.SyntheticModel",
            ProducerVersion = "1",
            Graph = graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = Opset });
        return model;
    }
}

using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EmbeddingService.Inference;

/// <summary>The input and output a tower must have, checked against a loaded session.</summary>
public sealed record TowerSignature(string InputName, int[] InputShape, TensorElementType[] InputTypes, string OutputName, int EmbeddingDimension)
{
    public const string TextInput = "input_ids";

    public static TowerSignature Vision(int height, int width, int dimension) =>
        new("pixel_values", [-1, 3, height, width], [TensorElementType.Float, TensorElementType.Float16], "image_embeds", dimension);

    public static TowerSignature Text(int contextLength, int dimension) =>
        new(TextInput, [-1, contextLength], [TensorElementType.Int64], "text_embeds", dimension);

    /// <summary>Returns the input's element type, or a sentence naming the file and what does not match.</summary>
    public TensorElementType Check(InferenceSession session, string path)
    {
        if (!session.InputMetadata.TryGetValue(InputName, out var input))
        {
            throw Mismatch(path, $"has no input '{InputName}' (its inputs: {string.Join(", ", session.InputMetadata.Keys)})");
        }

        var extraInputs = session.InputMetadata.Keys.Where(k => k != InputName).ToList();
        if (extraInputs.Count > 0)
        {
            throw Mismatch(path, $"needs inputs this service does not provide: {string.Join(", ", extraInputs)}");
        }

        if (!InputTypes.Contains(input.ElementDataType))
        {
            throw Mismatch(path, $"input '{InputName}' is {input.ElementDataType}, expected {string.Join(" or ", InputTypes)}");
        }

        if (!ShapeFits(input.Dimensions, InputShape))
        {
            throw Mismatch(path, $"input '{InputName}' has shape [{Describe(input.Dimensions)}], expected [{Describe(InputShape)}]");
        }

        if (!session.OutputMetadata.TryGetValue(OutputName, out var output))
        {
            throw Mismatch(path, $"has no output '{OutputName}' (its outputs: {string.Join(", ", session.OutputMetadata.Keys)})");
        }

        if (output.ElementDataType is not (TensorElementType.Float or TensorElementType.Float16))
        {
            throw Mismatch(path, $"output '{OutputName}' is {output.ElementDataType}, expected Float");
        }

        if (output.Dimensions.Length != 2 || (output.Dimensions[1] != EmbeddingDimension && output.Dimensions[1] > 0))
        {
            throw Mismatch(path, $"output '{OutputName}' has shape [{Describe(output.Dimensions)}]: the embedding dimension must be {EmbeddingDimension} (projection_dim in config.json)");
        }

        return input.ElementDataType;
    }

    public static Exception Mismatch(string path, string what) => new Model.ModelDirectoryException($"{path}: {what}.");

    private static bool ShapeFits(int[] actual, int[] expected)
    {
        if (actual.Length != expected.Length)
        {
            return false;
        }

        for (var i = 0; i < actual.Length; i++)
        {
            // A symbolic dimension (-1) in the model fits anything; a fixed batch of 1 is allowed but limits batching.
            if (actual[i] > 0 && expected[i] > 0 && actual[i] != expected[i])
            {
                return false;
            }
        }

        return true;
    }

    private static string Describe(int[] dims) => string.Join(",", dims.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)));
}

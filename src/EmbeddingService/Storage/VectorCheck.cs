using System.Numerics.Tensors;

namespace EmbeddingService.Storage;

/// <summary>
/// A vector computed elsewhere (an API body's, an import's): of the store's dimension, finite, not all zero; then
/// L2-normalized in place, as the service's own embeddings are (cosine search does not care; stored vectors then
/// compare as the service's do). One check for every way vectors come in, with one wording.
/// </summary>
public static class VectorCheck
{
    /// <summary>Null when the vector can be stored (it is then normalized), else why not.</summary>
    /// <param name="name">How the sentence names it: <c>embedding</c>, <c>"vector"</c>.</param>
    public static string? Normalize(Span<float> vector, int dimension, string name)
    {
        if (vector.Length != dimension) return $"{name} has {vector.Length} numbers, not {dimension}";
        var norm = TensorPrimitives.Norm(vector);
        if (!float.IsFinite(norm))
        {
            // A NaN or infinity gives a norm that is not finite; so can numbers near float's limit, scaled down first.
            for (var i = 0; i < vector.Length; i++)
            {
                if (!float.IsFinite(vector[i])) return $"{name}[{i}] is not a finite number";
            }

            TensorPrimitives.Divide(vector, TensorPrimitives.MaxMagnitude(vector), vector);
            norm = TensorPrimitives.Norm(vector);
        }

        if (norm == 0) return $"{name} is all zeros: it has no direction to compare";
        TensorPrimitives.Divide(vector, norm, vector);
        return null;
    }
}

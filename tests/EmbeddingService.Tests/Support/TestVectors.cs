using System.Numerics.Tensors;
using System.Text.Json;

namespace EmbeddingService.Tests.Support;

/// <summary>Random unit vectors and JSON answers, as the storage tests build and read them.</summary>
public static class TestVectors
{
    public static float[] Unit(float[] vector)
    {
        ArgumentNullException.ThrowIfNull(vector);
        TensorPrimitives.Divide(vector, TensorPrimitives.Norm(vector), vector);
        return vector;
    }

    /// <summary>A random direction: Gaussian coordinates, normalized.</summary>
    public static float[] Gaussian(Random random, int dimension = 512)
    {
        ArgumentNullException.ThrowIfNull(random);
        return Unit([.. Enumerable.Range(0, dimension).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())))]);
    }

    /// <summary>A successful answer's JSON (the status and body are the failure message otherwise).</summary>
    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}

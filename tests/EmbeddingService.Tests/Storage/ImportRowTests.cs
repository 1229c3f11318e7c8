using System.Globalization;
using System.Text;
using EmbeddingService.Importing;

namespace EmbeddingService.Tests.Storage;

/// <summary>
/// The JSON-lines reader of <c>import</c>: its own number reader agrees with the BCL's on what numbers are and what
/// they are worth, and a line's other members are still read after the embedding.
/// </summary>
public sealed class ImportRowTests
{
    private static ImportRow Parse(string line) => ImportRow.FromJsonLine(Encoding.UTF8.GetBytes(line), 1, 512);

    private static string Line(string embedding, string tail = "") => $"{{\"id\": \"a\", \"embedding\" : {embedding}{tail}}}";

    [Fact]
    public void Numbers_as_writers_print_them_read_as_float_parse_reads_them()
    {
        var random = new Random(5);
        var formats = new Func<double, string>[]
        {
            d => ((float)d).ToString("R", CultureInfo.InvariantCulture),
            d => d.ToString("R", CultureInfo.InvariantCulture),
            d => d.ToString("E3", CultureInfo.InvariantCulture),
            d => d.ToString("0.################", CultureInfo.InvariantCulture),
            d => (d * 1e-30).ToString("R", CultureInfo.InvariantCulture),
            d => (d * 1e25).ToString("R", CultureInfo.InvariantCulture),
        };
        var values = new List<float>();
        foreach (var format in formats)
        {
            var texts = Enumerable.Range(0, 512).Select(_ => format((random.NextDouble() * 2) - 1)).Append("0").Append("-0.0").Append("1E+2").Append("120e-1").ToArray();
            values.Clear();
            var json = Encoding.UTF8.GetBytes("[" + string.Join(" , ", texts) + "]");
            Assert.Equal(JsonNumberArray.Outcome.Parsed, JsonNumberArray.Read(json, 0, values, out var begin, out var end, out _));
            Assert.Equal((0, json.Length), (begin, end));
            for (var i = 0; i < texts.Length; i++)
            {
                var expected = float.Parse(texts[i], CultureInfo.InvariantCulture);
                // One rounding through double may land one float ulp away from the direct one.
                Assert.True(Math.Abs(values[i] - expected) <= Math.Abs(expected) * 1.2e-7f, $"{texts[i]}: {values[i]} vs {expected}");
            }
        }
    }

    [Theory]
    [InlineData("[1, 2,", "Malformed", -1)]
    [InlineData("[1, 2,]", "Malformed", -1)]
    [InlineData("[01]", "Malformed", -1)]
    [InlineData("[1.]", "Malformed", -1)]
    [InlineData("[.5]", "Malformed", -1)]
    [InlineData("[1e]", "Malformed", -1)]
    [InlineData("[+1]", "Malformed", -1)]
    [InlineData("[NaN]", "Malformed", -1)]
    [InlineData("[1 2]", "Malformed", -1)]
    [InlineData("[1, \"2\"]", "NotNumber", 1)]
    [InlineData("[1, [2]]", "NotNumber", 1)]
    [InlineData("[null]", "NotNumber", 0)]
    [InlineData("{\"a\": 1}", "NotArray", -1)]
    [InlineData("\"[1]\"", "NotArray", -1)]
    public void What_is_not_an_array_of_numbers_is_told_apart(string json, string outcome, int failedAt)
    {
        var read = JsonNumberArray.Read(Encoding.UTF8.GetBytes(json), 0, [], out _, out _, out var at);
        Assert.Equal((outcome, failedAt), (read.ToString(), at));
    }

    [Fact]
    public void A_line_is_read_whole_around_its_embedding()
    {
        var numbers = string.Join(",", Enumerable.Range(1, 512).Select(i => (i * 0.001).ToString(CultureInfo.InvariantCulture)));
        var row = Parse(Line($"[{numbers}]", ", \"metadata\": {\"shop\": \"s1\"}, \"extra\": [1, {\"b\": 2}]"));
        Assert.Null(row.Failure);
        Assert.Equal("a", row.Id);
        Assert.Equal("{\"shop\": \"s1\"}", row.MetadataJson);
        Assert.Equal(1, System.Numerics.Tensors.TensorPrimitives.Norm(row.Vector), 5);
        Assert.True(row.Vector![511] > row.Vector[0] * 500);

        Assert.Equal("embedding[2] is not a number", Parse(Line("[1, 2, true]")).Failure);
        Assert.StartsWith("not valid JSON", Parse(Line("[1, 2,")).Failure, StringComparison.Ordinal);
        Assert.Equal("\"embedding\" must be an array of numbers", Parse(Line("null")).Failure);
        Assert.Equal("embedding has 3 numbers, not 512", Parse(Line("[1, 2, 3]")).Failure);
        Assert.Equal("embedding[0] is not a finite number", Parse(Line($"[1e39,{numbers[..^6]}]")).Failure);
        Assert.StartsWith("not valid JSON", Parse(Line($"[{numbers}]", ", \"metadata\": {")).Failure, StringComparison.Ordinal);
    }
}

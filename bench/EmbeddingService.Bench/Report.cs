using System.Globalization;
using System.Text;

namespace EmbeddingService.Bench;

/// <summary>Rows of the one table the benchmark prints, in markdown so it can go into the README as is.</summary>
internal sealed class Report
{
    private readonly List<string[]> _rows = [];

    public void Add(string what, string throughput, string p50 = "", string p95 = "", string p99 = "", string notes = "")
    {
        _rows.Add([what, throughput, p50, p95, p99, notes]);
        Console.Error.WriteLine($"  {what}: {throughput} {p50} {p95} {p99} {notes}");
    }

    public string Render()
    {
        string[] header = ["measurement", "images/s", "p50 ms", "p95 ms", "p99 ms", "notes"];
        var text = new StringBuilder();
        text.AppendLine("| " + string.Join(" | ", header) + " |");
        text.AppendLine("|" + string.Concat(header.Select(_ => "---|")));
        foreach (var row in _rows) text.AppendLine("| " + string.Join(" | ", row) + " |");
        return text.ToString();
    }

    public static string F(double value, int digits = 1) => value.ToString("F" + digits, CultureInfo.InvariantCulture);
}

using System.Diagnostics.Metrics;
using EmbeddingService.ModelLifecycle;

namespace EmbeddingService.Telemetry;

/// <summary>
/// The service's own instruments (meter <c>EmbeddingService</c>), beside ASP.NET Core's, Kestrel's, Npgsql's and the
/// runtime's; <c>/metrics</c> exports them all in Prometheus' text format.
/// </summary>
public sealed class ServiceMetrics
{
    public const string MeterName = "EmbeddingService";
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _inference;
    private readonly Histogram<double> _decode;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _uploaded;

    public ServiceMetrics(IMeterFactory meters, ModelState model)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(model);
        var meter = meters.Create(MeterName);
        _batchSize = meter.CreateHistogram("embedding.inference.batch_size", "{item}", "Items per inference run",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64] });
        _inference = meter.CreateHistogram("embedding.inference.duration", "s", "Time of one inference run",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
        _decode = meter.CreateHistogram("embedding.image.decode.duration", "s", "Decoding and preprocessing of one image",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] });
        _refused = meter.CreateCounter<long>("embedding.requests.refused", "{request}", "Requests refused for capacity, limits or shutdown, by reason");
        _uploaded = meter.CreateCounter<long>("embedding.upload.received", "By", "Bytes of uploaded files received");
        meter.CreateObservableGauge("embedding.queue.depth", () => QueueDepths(model), "{request}", "Requests admitted and not yet running, per tower");
        meter.CreateObservableGauge("embedding.model.loaded", () => ModelLoaded(model), "{model}",
            "1 once the model is loaded and serving, 0 while it loads or if it failed; labelled with the model's name and dimension once known");
        // A constant 1 whose labels say which CPU the other figures came from (the "info" metric pattern).
        var cpu = Cpu.CpuFeatures.Current;
        var cpuTags = new KeyValuePair<string, object?>[]
        {
            new("name", cpu.Name),
            new("instruction_sets", string.Join(",", cpu.InstructionSets)),
            new("int8_kernel", Cpu.Int8KernelExtensions.Label(cpu.Int8Kernel)),
        };
        meter.CreateObservableGauge("embedding.cpu.info", () => new Measurement<int>(1, cpuTags), "{cpu}",
            "1, labelled with the CPU's name, the instruction sets that matter and the int8 kernel ONNX Runtime uses on it");
    }

    public void InferenceRun(string tower, int items, TimeSpan duration)
    {
        var tag = new KeyValuePair<string, object?>("tower", tower);
        _batchSize.Record(items, tag);
        _inference.Record(duration.TotalSeconds, tag);
    }

    public void Decoded(string format, TimeSpan duration) => _decode.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("format", format.ToLowerInvariant()));

    public void Received(long bytes) => _uploaded.Add(bytes);

    public void Refused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    private static Measurement<int> ModelLoaded(ModelState model) => model.Card is { } card
        ? new(model.Status == ModelStatus.Ready ? 1 : 0, new KeyValuePair<string, object?>("model", card.Name), new KeyValuePair<string, object?>("dimension", card.Dimension))
        : new(0);

    private static IEnumerable<Measurement<int>> QueueDepths(ModelState model)
    {
        if (model.Status != ModelStatus.Ready || model.Serving is not { } serving) yield break;
        if (serving.Model.Towers.HasFlag(Model.ModelTowers.Vision)) yield return new(serving.Vision.Pending, new KeyValuePair<string, object?>("tower", "vision"));
        if (serving.Model.Towers.HasFlag(Model.ModelTowers.Text)) yield return new(serving.Text.Pending, new KeyValuePair<string, object?>("tower", "text"));
    }
}

using EmbeddingService.Model;

namespace EmbeddingService.Hosting;

public enum ModelStatus
{
    Loading,
    Ready,
    Failed,
}

/// <summary>Where model start-up stands; the server answers from the first second while the model loads.</summary>
public sealed class ModelState : IDisposable
{
    private volatile Snapshot _current = new(ModelStatus.Loading, null, null);

    public ModelStatus Status => _current.Status;

    public ClipModel? Model => _current.Model;

    public string? Error => _current.Error;

    public void SetReady(ClipModel model) => _current = new Snapshot(ModelStatus.Ready, model, null);

    public void SetFailed(string error) => _current = new Snapshot(ModelStatus.Failed, null, error);

    public void Dispose() => _current.Model?.Dispose();

    private sealed record Snapshot(ModelStatus Status, ClipModel? Model, string? Error);
}

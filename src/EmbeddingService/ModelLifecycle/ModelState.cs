using EmbeddingService.Model;

namespace EmbeddingService.ModelLifecycle;

public enum ModelStatus
{
    Loading,
    Ready,
    Failed,
}

/// <summary>Where model start-up stands; the server answers from the first second while the model loads.</summary>
public sealed class ModelState : IAsyncDisposable
{
    private volatile Snapshot _current = new(ModelStatus.Loading, null, null);

    public ModelStatus Status => _current.Status;

    public ServingModel? Serving => _current.Serving;

    public ClipModel? Model => _current.Serving?.Model;

    public string? Error => _current.Error;

    public void SetReady(ServingModel serving) => _current = new Snapshot(ModelStatus.Ready, serving, null);

    public void SetFailed(string error) => _current = new Snapshot(ModelStatus.Failed, null, error);

    public async ValueTask DisposeAsync()
    {
        if (_current.Serving is { } serving)
        {
            await serving.DisposeAsync();
        }
    }

    private sealed record Snapshot(ModelStatus Status, ServingModel? Serving, string? Error);
}

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
    private readonly TaskCompletionSource<ModelCard> _card = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ModelStatus Status => _current.Status;

    public ServingModel? Serving => _current.Serving;

    public ClipModel? Model => _current.Serving?.Model;

    public string? Error => _current.Error;

    /// <summary>Which model is coming, known from its config files before its sessions are open; null until then.</summary>
    public ModelCard? Card => _card.Task.IsCompletedSuccessfully ? _card.Task.Result : null;

    /// <summary>Waits for <see cref="Card"/>; fails with the start-up's reason when the model cannot be read.</summary>
    public Task<ModelCard> CardAsync(CancellationToken cancellationToken) => _card.Task.WaitAsync(cancellationToken);

    public void SetCard(ModelCard card) => _card.TrySetResult(card);

    public void SetReady(ServingModel serving)
    {
        _card.TrySetResult(serving.Model.Card);
        _current = new Snapshot(ModelStatus.Ready, serving, null);
    }

    public void SetFailed(string error)
    {
        _card.TrySetException(new ModelDirectoryException(error));
        _current = new Snapshot(ModelStatus.Failed, null, error);
    }

    public async ValueTask DisposeAsync()
    {
        if (_current.Serving is { } serving)
        {
            await serving.DisposeAsync();
        }
    }

    private sealed record Snapshot(ModelStatus Status, ServingModel? Serving, string? Error);
}

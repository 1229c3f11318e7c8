namespace EmbeddingService.Shutdown;

/// <summary>
/// Requests in flight, and whether the service is draining: after SIGTERM, readiness fails at once, new requests
/// are refused with 503 + Retry-After, and the host waits for the in-flight count to reach zero before it stops
/// the server, so no admitted request loses its answer.
/// </summary>
public sealed class Draining
{
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private volatile bool _draining;

    public bool IsDraining => _draining;

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Counts a request in, or refuses it (false) once draining has begun.</summary>
    public bool TryEnter()
    {
        Interlocked.Increment(ref _inFlight);
        if (_draining)
        {
            Leave();
            return false;
        }

        return true;
    }

    public void Leave()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _draining)
        {
            _idle.TrySetResult();
        }
    }

    /// <summary>Starts draining; completes when nothing is in flight or <paramref name="cancellationToken"/> fires.</summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        if (Volatile.Read(ref _inFlight) == 0)
        {
            _idle.TrySetResult();
        }

        await _idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }
}

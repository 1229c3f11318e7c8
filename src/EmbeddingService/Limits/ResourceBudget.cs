namespace EmbeddingService.Limits;

/// <summary>
/// A fixed amount of something requests hold for a while (bytes of upload buffers, decoded pixels). Requests
/// that do not fit wait in arrival order, so a large one is not starved by a stream of small ones. A request
/// larger than the whole budget is clamped to it: it runs alone instead of never.
/// </summary>
public sealed class ResourceBudget
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private long _available;

    public ResourceBudget(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        _available = capacity;
    }

    public long Capacity { get; }

    public long Available
    {
        get
        {
            lock (_lock)
            {
                return _available;
            }
        }
    }

    /// <summary>Waits until <paramref name="amount"/> fits; the lease gives it back on dispose.</summary>
    public async ValueTask<Lease> AcquireAsync(long amount, CancellationToken cancellationToken)
    {
        var granted = await TakeAsync(amount, cancellationToken).ConfigureAwait(false);
        return new Lease(this, granted);
    }

    private async ValueTask<long> TakeAsync(long amount, CancellationToken cancellationToken)
    {
        amount = Math.Clamp(amount, 0, Capacity);
        if (amount == 0)
        {
            return 0;
        }

        LinkedListNode<Waiter> node;
        lock (_lock)
        {
            if (_waiters.Count == 0 && _available >= amount)
            {
                _available -= amount;
                return amount;
            }

            cancellationToken.ThrowIfCancellationRequested();
            node = _waiters.AddLast(new Waiter(amount));
        }

        await using (cancellationToken.Register(static state =>
        {
            var (budget, waiting) = ((ResourceBudget, LinkedListNode<Waiter>))state!;
            budget.Cancel(waiting);
        }, (this, node)))
        {
            await node.Value.Granted.Task.ConfigureAwait(false);
        }

        return amount;
    }

    private void Give(long amount)
    {
        if (amount == 0)
        {
            return;
        }

        lock (_lock)
        {
            _available += amount;
            WakeWaitersThatFit();
        }
    }

    private void Cancel(LinkedListNode<Waiter> node)
    {
        lock (_lock)
        {
            if (node.List is null)
            {
                return; // already granted
            }

            _waiters.Remove(node);
            node.Value.Granted.TrySetCanceled();
            // The cancelled waiter may have been the one at the head that blocked smaller ones behind it.
            WakeWaitersThatFit();
        }
    }

    private void WakeWaitersThatFit()
    {
        while (_waiters.First is { } first && first.Value.Amount <= _available)
        {
            _available -= first.Value.Amount;
            _waiters.RemoveFirst();
            first.Value.Granted.TrySetResult();
        }
    }

    private sealed record Waiter(long Amount)
    {
        public TaskCompletionSource Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>An amount held from the budget; it can grow, and all of it goes back on dispose.</summary>
    public sealed class Lease(ResourceBudget budget, long amount) : IDisposable
    {
        private long _amount = amount;

        public long Amount => Volatile.Read(ref _amount);

        /// <summary>Waits for <paramref name="more"/> to fit and adds it to this lease.</summary>
        public async ValueTask GrowAsync(long more, CancellationToken cancellationToken)
        {
            var granted = await budget.TakeAsync(Math.Min(more, budget.Capacity - Amount), cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref _amount, granted);
        }

        /// <summary>Gives back part of the lease early (a buffer that was replaced by a larger one).</summary>
        public void Shrink(long less)
        {
            var given = Math.Min(less, Amount);
            Interlocked.Add(ref _amount, -given);
            budget.Give(given);
        }

        public void Dispose() => budget.Give(Interlocked.Exchange(ref _amount, 0));
    }
}

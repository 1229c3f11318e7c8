using EmbeddingService.Errors;

namespace EmbeddingService.Storage;

public enum StorageStatus
{
    NotConfigured,
    Connecting,
    Ready,
    Refused,
}

/// <summary>Where storage stands: endpoints answer from it, /health reports it.</summary>
public sealed class StorageState
{
    private volatile Snapshot _current = new(StorageStatus.NotConfigured, null, null);

    public StorageStatus Status => _current.Status;

    public IVectorStore? Store => _current.Store;

    public string? Error => _current.Error;

    internal void Set(StorageStatus status, IVectorStore? store = null, string? error = null) => _current = new Snapshot(status, store, error);

    /// <summary>The store, or why there is none now.</summary>
    /// <exception cref="StorageNotConfiguredException">DATABASE_URL is not set.</exception>
    /// <exception cref="StorageUnavailableException">Not connected yet, or refused.</exception>
    public IVectorStore Require() => _current switch
    {
        { Status: StorageStatus.Ready, Store: { } store } => store,
        { Status: StorageStatus.NotConfigured } => throw new StorageNotConfiguredException(),
        { Status: StorageStatus.Refused, Error: var error } => throw new StorageUnavailableException($"Storage is disabled: {error}"),
        _ => throw new StorageUnavailableException("The database has not been reached yet; retry shortly."),
    };

    /// <summary>Which halves of the database answer now (within 2 s); null when storage is not configured.</summary>
    public async Task<Reachability?> IsReachableAsync(CancellationToken cancellationToken)
    {
        if (Status == StorageStatus.NotConfigured)
        {
            return null;
        }

        if (Store is not { } store)
        {
            return new Reachability(false, null);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            return await store.PingAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Reachability(false, false);
        }
    }

    private sealed record Snapshot(StorageStatus Status, IVectorStore? Store, string? Error);
}

/// <summary>No DATABASE_URL: the storage endpoints are off.</summary>
public sealed class StorageNotConfiguredException : ApiException
{
    public StorageNotConfiguredException()
        : this("Storage is not configured: set DATABASE_URL=postgresql://user:password@host:5432/database (PostgreSQL >= 13 with pgvector >= 0.7); " +
            "scripts/postgres.sh start gives a local one.")
    {
    }

    public StorageNotConfiguredException(string message)
        : base(new ApiError(ErrorKind.NotConfigured, message))
    {
    }

    public StorageNotConfiguredException(string message, Exception innerException)
        : base(new ApiError(ErrorKind.NotConfigured, message), innerException)
    {
    }
}

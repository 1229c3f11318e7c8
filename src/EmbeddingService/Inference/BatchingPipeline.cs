using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace EmbeddingService.Inference;

/// <summary>One item's embedding and how it was made: time waiting for its batch, the run's time and size.</summary>
public sealed record BatchResult(float[] Embedding, TimeSpan Waited, TimeSpan Run, int BatchSize);

/// <summary>
/// Batches concurrent requests into single inference runs of one tower. Requests are admitted first (a full
/// pipeline says so at once, before any work is spent on them), prepare their input on their own thread, then
/// queue it; workers (one, or as many as the tower takes concurrent runs) drain the queue into pinned batch buffers
/// of their own, run the tower once per batch and complete each request with its own embedding, in order.
/// </summary>
public sealed partial class BatchingPipeline<T> : IAsyncDisposable
    where T : unmanaged
{
    private readonly EmbeddingTower _tower;
    private readonly Action<EmbeddingTower, Memory<T>, int, Memory<float>> _run;
    private readonly BatchingOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<Item> _queue;
    private readonly int _maxBatch;
    private readonly Action<int, TimeSpan>? _observeRun;
    private readonly Task[] _workers;
    private int _admitted;
    private int _expected = 1;
    private long _runs;
    private long _itemsRun;

    /// <param name="observeRun">Told of every run that succeeded: its item count and time (metrics).</param>
    public BatchingPipeline(EmbeddingTower tower, Action<EmbeddingTower, Memory<T>, int, Memory<float>> run, BatchingOptions options, ILogger logger,
        Action<int, TimeSpan>? observeRun = null)
    {
        ArgumentNullException.ThrowIfNull(tower);
        ArgumentNullException.ThrowIfNull(options);
        _tower = tower;
        _run = run;
        _options = options;
        _logger = logger;
        _observeRun = observeRun;
        _maxBatch = Math.Min(options.EffectiveMaxBatchSize, tower.MaxBatch);
        _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = tower.Workers == 1 });
        _workers = [.. Enumerable.Range(0, Math.Max(1, tower.Workers)).Select(_ => Task.Run(RunAsync))];
    }

    /// <summary>Elements per item the caller prepares.</summary>
    public int ItemLength => _tower.ItemLength;

    /// <summary>Inference runs done so far.</summary>
    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Items embedded so far (cancelled ones that were dropped are not counted).</summary>
    public long ItemsRun => Interlocked.Read(ref _itemsRun);

    /// <summary>Requests admitted and not yet running.</summary>
    public int Pending => Volatile.Read(ref _admitted);

    /// <summary>Whether <see cref="Admit"/> would refuse now.</summary>
    public bool IsFull => Volatile.Read(ref _admitted) >= _options.MaxQueueDepth;

    /// <summary>Reserves a place; dispose the ticket if the request ends before <see cref="EmbedAsync"/>.</summary>
    /// <exception cref="QueueFullException">MAX_QUEUE_DEPTH requests are already waiting.</exception>
    public Ticket Admit() => Admit(1)[0];

    /// <summary>
    /// Reserves places for all items of one request, or none. A request with more items than the queue holds is
    /// admitted when the queue is empty (it then runs alone) rather than never.
    /// </summary>
    /// <exception cref="QueueFullException">There is no room for all of them.</exception>
    public Ticket[] Admit(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        while (true)
        {
            var current = Volatile.Read(ref _admitted);
            if (current > 0 && current + count > _options.MaxQueueDepth)
            {
                throw new QueueFullException();
            }

            if (Interlocked.CompareExchange(ref _admitted, current + count, current) == current)
            {
                var tickets = new Ticket[count];
                for (var i = 0; i < count; i++) tickets[i] = new Ticket(this);
                return tickets;
            }
        }
    }

    /// <summary>Queues a prepared input (ItemLength elements, copied before the task completes) and awaits its embedding.</summary>
    public async Task<BatchResult> EmbedAsync(Ticket ticket, ReadOnlyMemory<T> input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        var item = new Item(input, Stopwatch.GetTimestamp());
        ticket.HandOver();
        if (!_queue.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _admitted);
            throw new ObjectDisposedException(nameof(BatchingPipeline<T>));
        }

        // A cancelled waiter returns at once; the worker then drops its item instead of running it.
        await using var registration = cancellationToken.Register(static state => ((Item)state!).Completion.TrySetCanceled(), item);
        return await item.Completion.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await Task.WhenAll(_workers);
    }

    private async Task RunAsync()
    {
        // Pinned once for the worker's life: ONNX Runtime reads them in place on every run.
        var inputs = GC.AllocateArray<T>(_maxBatch * _tower.ItemLength, pinned: true);
        var outputs = GC.AllocateArray<float>(_maxBatch * _tower.Dimension, pinned: true);
        var batch = new List<Item>(_maxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            await GatherAsync(reader, batch);
            if (batch.Count > 0)
            {
                Run(batch, inputs, outputs);
            }
        }
    }

    /// <summary>
    /// Takes what is queued, then waits up to BATCH_TIMEOUT_MS for more while the batch is short of what is
    /// coming: requests still preparing their input, or as many as the last run served plus those that arrived
    /// during it (closed-loop clients come back together; without this they split into small alternating
    /// batches). A request alone with an idle runtime never waits: it was expected alone.
    /// </summary>
    private async Task GatherAsync(ChannelReader<Item> reader, List<Item> batch)
    {
        using var timeout = new CancellationTokenSource();
        var timerStarted = false;
        while (batch.Count < _maxBatch)
        {
            if (reader.TryRead(out var item))
            {
                Interlocked.Decrement(ref _admitted);
                if (!item.Completion.Task.IsCompleted)
                {
                    batch.Add(item);
                }

                continue;
            }

            var more = Volatile.Read(ref _admitted) > 0 || batch.Count < _expected;
            if (batch.Count == 0 || !more || _options.BatchTimeoutMs == 0)
            {
                return;
            }

            if (!timerStarted)
            {
                timeout.CancelAfter(_options.BatchTimeoutMs);
                timerStarted = true;
            }

            try
            {
                if (!await reader.WaitToReadAsync(timeout.Token))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                // Fewer came than expected: expect what came.
                _expected = batch.Count;
                return;
            }
        }
    }

    private void Run(List<Item> batch, T[] inputs, float[] outputs)
    {
        var length = _tower.ItemLength;
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Input.Span.CopyTo(inputs.AsSpan(i * length, length));
        }

        try
        {
            _run(_tower, inputs, batch.Count, outputs);
        }
#pragma warning disable CA1031 // A failed run fails its requests, never the worker that serves all the others.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogRunFailed(_logger, batch.Count, e);
            foreach (var item in batch) item.Completion.TrySetException(e);
            return;
        }

        // Counted before completion, so whoever sees a result also sees the run that made it.
        Interlocked.Increment(ref _runs);
        Interlocked.Add(ref _itemsRun, batch.Count);
        LogBatch(_logger, batch.Count);
        var run = Stopwatch.GetElapsedTime(started);
        _observeRun?.Invoke(batch.Count, run);
        _expected = Math.Min(_maxBatch, batch.Count + Volatile.Read(ref _admitted));
        for (var i = 0; i < batch.Count; i++)
        {
            var embedding = outputs.AsSpan(i * _tower.Dimension, _tower.Dimension).ToArray();
            batch[i].Completion.TrySetResult(new BatchResult(embedding, Stopwatch.GetElapsedTime(batch[i].QueuedAt, started), run, batch.Count));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "An inference run of {Count} items failed")]
    private static partial void LogRunFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(Level = LogLevel.Trace, Message = "Ran a batch of {Count}")]
    private static partial void LogBatch(ILogger logger, int count);

    /// <summary>A place in the pipeline, held from admission until the input is queued.</summary>
    public sealed class Ticket(BatchingPipeline<T> pipeline) : IDisposable
    {
        private int _released;

        internal void HandOver() => Interlocked.Exchange(ref _released, 1);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Interlocked.Decrement(ref pipeline._admitted);
            }
        }
    }

    private sealed class Item(ReadOnlyMemory<T> input, long queuedAt)
    {
        public ReadOnlyMemory<T> Input { get; } = input;

        public long QueuedAt { get; } = queuedAt;

        public TaskCompletionSource<BatchResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

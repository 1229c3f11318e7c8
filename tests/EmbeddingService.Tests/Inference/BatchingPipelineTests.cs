using EmbeddingService.Inference;
using EmbeddingService.Model;
using EmbeddingService.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace EmbeddingService.Tests.Inference;

[Collection(TinyModelGroup.Name)]
public sealed class BatchingPipelineTests(TinyModelFixture tiny) : IDisposable
{
    private readonly ClipModel _model = Models.Load(tiny.Directory);

    [Fact]
    public async Task Concurrent_requests_run_as_one_batch_whose_outputs_equal_one_by_one_in_order()
    {
        await using var pipeline = Vision(new BatchingOptions { MaxBatchSize = 8, BatchTimeoutMs = 5_000, MaxQueueDepth = 64 });
        var inputs = Enumerable.Range(0, 8).Select(Pixels).ToArray();
        // All eight are admitted before any is queued, so the worker waits for the rest instead of running the first alone.
        var tickets = inputs.Select(_ => pipeline.Admit()).ToArray();
        var batched = await Task.WhenAll(inputs.Select((input, i) => Task.Run(() => pipeline.EmbedAsync(tickets[i], input, CancellationToken.None))));
        var results = batched.Select(r => r.Embedding).ToArray();

        Assert.Equal(1, pipeline.Runs);
        Assert.All(batched, r => Assert.Equal(8, r.BatchSize));
        Assert.Equal(8, pipeline.ItemsRun);
        for (var i = 0; i < inputs.Length; i++)
        {
            var alone = new float[512];
            _model.Vision.Embed(inputs[i], 1, alone);
            Assert.InRange(1 - Models.Cosine(alone, results[i]), -1e-6, 1e-6);
            if (i > 0) Assert.InRange(Models.Cosine(results[i - 1], results[i]), -1, 0.999);
        }
    }

    [Fact]
    public async Task A_tower_that_takes_two_workers_runs_two_batches_at_once_each_with_its_own_results()
    {
        var loader = new ModelLoader(new OrtSessionFactory(new InferenceOptions { InferenceWorkers = 2, IntraOpThreads = 1 }, NullLogger.Instance));
        using var model = loader.Load(new ModelFiles(tiny.Directory, ModelVariant.Fp32));
        Assert.Equal(2, model.Vision.Workers);
        int inside = 0, peak = 0;
        await using var pipeline = new BatchingPipeline<float>(model.Vision, (tower, input, count, output) =>
        {
            var now = Interlocked.Increment(ref inside);
            InterlockedMax(ref peak, now);
            // The first run waits (up to 10 s) for a second one to start beside it.
            SpinWait.SpinUntil(() => Volatile.Read(ref inside) >= 2, TimeSpan.FromSeconds(10));
            tower.Embed(input, count, output);
            Interlocked.Decrement(ref inside);
        }, new BatchingOptions { MaxBatchSize = 1, BatchTimeoutMs = 0, MaxQueueDepth = 8 }, NullLogger.Instance);
        var inputs = new[] { Pixels(21), Pixels(22) };
        var tickets = inputs.Select(_ => pipeline.Admit()).ToArray();
        var results = await Task.WhenAll(inputs.Select((input, i) => pipeline.EmbedAsync(tickets[i], input, CancellationToken.None)));

        Assert.Equal(2, peak);
        for (var i = 0; i < inputs.Length; i++)
        {
            var alone = new float[512];
            _model.Vision.Embed(inputs[i], 1, alone);
            Assert.InRange(1 - Models.Cosine(alone, results[i].Embedding), -1e-6, 1e-6);
        }
    }

    [Fact]
    public void Int8_images_run_one_thread_per_run_on_every_core_and_the_rest_one_run_on_every_core_unless_told()
    {
        var cores = Environment.ProcessorCount;
        Assert.Equal(new InferenceLayout(cores, 1), new InferenceOptions().LayoutFor(ModelVariant.Quantized));
        Assert.Equal(new InferenceLayout(1, cores), new InferenceOptions().LayoutFor(ModelVariant.Quantized, ModelTowers.Text));
        Assert.Equal(new InferenceLayout(1, cores), new InferenceOptions().LayoutFor(ModelVariant.Fp32));
        Assert.Equal(new InferenceLayout(1, cores), new InferenceOptions().LayoutFor(ModelVariant.Fp16));
        Assert.Equal(new InferenceLayout(1, 2), new InferenceOptions { InferenceWorkers = 1, IntraOpThreads = 2 }.LayoutFor(ModelVariant.Quantized));
        Assert.Equal(new InferenceLayout(1, 3), new InferenceOptions { IntraOpThreads = 3 }.LayoutFor(ModelVariant.Fp32));
        Assert.Equal(new InferenceLayout(3, Math.Max(1, cores / 3)), new InferenceOptions { InferenceWorkers = 3 }.LayoutFor(ModelVariant.Fp32));

        // Their batches: int8 images 4 (two side by side), everything else 8, MAX_BATCH_SIZE above all; the rest carried over.
        Assert.Equal(4, new BatchingOptions { MaxQueueDepth = 7 }.ForImages(ModelVariant.Quantized).MaxBatchSize);
        Assert.Equal(7, new BatchingOptions { MaxQueueDepth = 7 }.ForImages(ModelVariant.Quantized).MaxQueueDepth);
        Assert.Equal(8, new BatchingOptions().ForImages(ModelVariant.Fp32).MaxBatchSize);
        Assert.Equal(6, new BatchingOptions { MaxBatchSize = 6 }.ForImages(ModelVariant.Quantized).MaxBatchSize);
        Assert.Equal(8, new BatchingOptions().EffectiveMaxBatchSize);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    [Fact]
    public async Task A_request_alone_is_run_at_once_without_waiting_for_the_timeout()
    {
        await using var pipeline = Vision(new BatchingOptions { MaxBatchSize = 8, BatchTimeoutMs = 60_000, MaxQueueDepth = 64 });
        var ticket = pipeline.Admit();
        var result = pipeline.EmbedAsync(ticket, Pixels(1), CancellationToken.None);
        Assert.Same(result, await Task.WhenAny(result, Task.Delay(TimeSpan.FromSeconds(30))));
        Assert.Equal(512, (await result).Embedding.Length);
        Assert.Equal(1, (await result).BatchSize);
    }

    /// <summary>Closed-loop clients come back together: the first to return waits for the others it ran with.</summary>
    [Fact]
    public async Task After_a_batch_of_three_the_next_request_waits_for_two_more_then_alone_it_does_not()
    {
        await using var pipeline = Vision(new BatchingOptions { MaxBatchSize = 8, BatchTimeoutMs = 2_000, MaxQueueDepth = 64 });
        var tickets = Enumerable.Range(0, 3).Select(_ => pipeline.Admit()).ToArray();
        await Task.WhenAll(tickets.Select((t, i) => pipeline.EmbedAsync(t, Pixels(i), CancellationToken.None)));
        Assert.Equal(1, pipeline.Runs);

        var first = pipeline.EmbedAsync(pipeline.Admit(), Pixels(10), CancellationToken.None);
        await Task.Delay(100);
        var others = new[] { pipeline.EmbedAsync(pipeline.Admit(), Pixels(11), CancellationToken.None), pipeline.EmbedAsync(pipeline.Admit(), Pixels(12), CancellationToken.None) };
        var regrouped = await Task.WhenAll(others.Prepend(first));
        Assert.All(regrouped, r => Assert.Equal(3, r.BatchSize));
        Assert.Equal(2, pipeline.Runs);

        // Nobody else comes: it runs alone when the timeout ends, and from then on a lone request does not wait.
        var lone = await pipeline.EmbedAsync(pipeline.Admit(), Pixels(13), CancellationToken.None);
        Assert.Equal(1, lone.BatchSize);
        var next = await pipeline.EmbedAsync(pipeline.Admit(), Pixels(14), CancellationToken.None);
        Assert.Equal(1, next.BatchSize);
        Assert.True(next.Waited < TimeSpan.FromMilliseconds(1_000), $"waited {next.Waited}");
    }

    [Fact]
    public async Task A_cancelled_waiting_request_returns_at_once_and_is_never_run()
    {
        using var gate = new SemaphoreSlim(0);
        await using var pipeline = new BatchingPipeline<float>(_model.Vision, (tower, input, count, output) =>
        {
            gate.Wait();
            tower.Embed(input, count, output);
        }, new BatchingOptions { MaxBatchSize = 1, BatchTimeoutMs = 0, MaxQueueDepth = 8 }, NullLogger.Instance);

        var running = pipeline.EmbedAsync(pipeline.Admit(), Pixels(1), CancellationToken.None);
        while (pipeline.Pending > 0) await Task.Delay(5);
        using var cancellation = new CancellationTokenSource();
        var waiting = pipeline.EmbedAsync(pipeline.Admit(), Pixels(2), cancellation.Token);
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);

        gate.Release(2);
        await running;
        var after = pipeline.EmbedAsync(pipeline.Admit(), Pixels(3), CancellationToken.None);
        gate.Release();
        await after;
        Assert.Equal(2, pipeline.ItemsRun);
        Assert.Equal(0, pipeline.Pending);
    }

    [Fact]
    public async Task A_full_queue_refuses_at_admission_and_frees_places_as_requests_end()
    {
        await using var pipeline = Vision(new BatchingOptions { MaxBatchSize = 4, BatchTimeoutMs = 0, MaxQueueDepth = 2 });
        var first = pipeline.Admit();
        using var second = pipeline.Admit();
        Assert.Throws<QueueFullException>(() => pipeline.Admit());

        first.Dispose();
        using var third = pipeline.Admit();
        Assert.Equal(2, pipeline.Pending);
    }

    [Fact]
    public async Task A_failed_run_fails_its_requests_and_the_pipeline_keeps_serving()
    {
        var failNext = true;
        await using var pipeline = new BatchingPipeline<float>(_model.Vision, (tower, input, count, output) =>
        {
            if (failNext)
            {
                failNext = false;
                throw new InvalidOperationException("boom");
            }

            tower.Embed(input, count, output);
        }, new BatchingOptions { MaxBatchSize = 4, BatchTimeoutMs = 0, MaxQueueDepth = 8 }, NullLogger.Instance);

        await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.EmbedAsync(pipeline.Admit(), Pixels(1), CancellationToken.None));
        Assert.Equal(512, (await pipeline.EmbedAsync(pipeline.Admit(), Pixels(1), CancellationToken.None)).Embedding.Length);
    }

    [Fact]
    public async Task The_text_tower_batches_token_ids_the_same_way()
    {
        await using var pipeline = new BatchingPipeline<long>(_model.Text, static (tower, input, count, output) => tower.Embed(input, count, output),
            new BatchingOptions { MaxBatchSize = 4, BatchTimeoutMs = 5_000, MaxQueueDepth = 8 }, NullLogger.Instance);
        long[][] inputs = [Tokens(320, 1125), Tokens(736, 2761, 4079), Tokens(2368)];
        var tickets = inputs.Select(_ => pipeline.Admit()).ToArray();
        var results = (await Task.WhenAll(inputs.Select((input, i) => pipeline.EmbedAsync(tickets[i], input, CancellationToken.None)))).Select(r => r.Embedding).ToArray();
        Assert.Equal(1, pipeline.Runs);
        for (var i = 0; i < inputs.Length; i++)
        {
            var alone = new float[512];
            _model.Text.Embed(inputs[i], 1, alone);
            Assert.InRange(1 - Models.Cosine(alone, results[i]), -1e-6, 1e-6);
        }
    }

    public void Dispose() => _model.Dispose();

    private BatchingPipeline<float> Vision(BatchingOptions options) =>
        new(_model.Vision, static (tower, input, count, output) => tower.Embed(input, count, output), options, NullLogger.Instance);

    private float[] Pixels(int seed)
    {
        var random = new Random(seed);
        var pixels = new float[_model.Vision.ItemLength];
        for (var i = 0; i < pixels.Length; i++) pixels[i] = (float)((random.NextDouble() * 4) - 2);
        return pixels;
    }

    private static long[] Tokens(params long[] words)
    {
        var ids = new long[77];
        ids[0] = 49406;
        words.CopyTo(ids, 1);
        ids[words.Length + 1] = 49407;
        return ids;
    }
}

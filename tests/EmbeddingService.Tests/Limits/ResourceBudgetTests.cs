using EmbeddingService.Limits;

namespace EmbeddingService.Tests.Limits;

public sealed class ResourceBudgetTests
{
    [Fact]
    public async Task What_fits_is_granted_at_once_and_the_rest_waits_in_arrival_order()
    {
        var budget = new ResourceBudget(100);
        using var first = await budget.AcquireAsync(60, CancellationToken.None);
        var large = budget.AcquireAsync(50, CancellationToken.None).AsTask();
        // Small enough to fit now, but it came after the large one: it must not overtake it.
        var small = budget.AcquireAsync(10, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(large.IsCompleted);
        Assert.False(small.IsCompleted);

        first.Dispose();
        using var largeLease = await large;
        using var smallLease = await small;
        Assert.Equal(40, budget.Available);
    }

    [Fact]
    public async Task A_cancelled_waiter_lets_those_behind_it_through()
    {
        var budget = new ResourceBudget(100);
        using var held = await budget.AcquireAsync(80, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var blocked = budget.AcquireAsync(90, cancel.Token).AsTask();
        var behind = budget.AcquireAsync(20, CancellationToken.None).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocked);
        using var lease = await behind.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, budget.Available);
    }

    [Fact]
    public async Task More_than_the_whole_budget_is_clamped_so_it_runs_alone()
    {
        var budget = new ResourceBudget(100);
        using (var huge = await budget.AcquireAsync(1_000, CancellationToken.None))
        {
            Assert.Equal(100, huge.Amount);
            Assert.Equal(0, budget.Available);
        }

        Assert.Equal(100, budget.Available);
    }

    [Fact]
    public async Task A_lease_grows_and_shrinks_and_gives_everything_back()
    {
        var budget = new ResourceBudget(100);
        var lease = await budget.AcquireAsync(10, CancellationToken.None);
        await lease.GrowAsync(30, CancellationToken.None);
        lease.Shrink(15);
        Assert.Equal(25, lease.Amount);
        Assert.Equal(75, budget.Available);
        lease.Dispose();
        lease.Dispose();
        Assert.Equal(100, budget.Available);
    }

    [Fact]
    public void Large_buffers_are_native_and_small_ones_pooled()
    {
        var pool = new BoundedBufferPool(1024, 2);
        using var small = pool.Rent(1000);
        using var large = pool.Rent(1 << 20);
        Assert.Equal(1000, small.Length);
        Assert.Equal(1 << 20, large.Length);
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(small.Memory, out _));
        Assert.False(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(large.Memory, out _));
        large.Span.Fill(7);
        Assert.Equal(7, large.Span[^1]);
    }
}

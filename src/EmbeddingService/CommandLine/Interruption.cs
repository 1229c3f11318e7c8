namespace EmbeddingService.CommandLine;

/// <summary>
/// Ctrl-C for the commands: the first one cancels the token, so the command stops cleanly and keeps what it did; a
/// second one is the default (the process ends at once). System.CommandLine's own handling is off (ServiceCommands).
/// </summary>
public sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();

    private Interruption() => Console.CancelKeyPress += OnCancelKeyPress;

    public CancellationToken Token => _cancel.Token;

    public bool Requested => _cancel.IsCancellationRequested;

    public static Interruption Listen() => new();

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _cancel.Dispose();
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = !_cancel.IsCancellationRequested;
        _cancel.Cancel();
    }
}

using System.Runtime.InteropServices;

namespace EmbeddingService.CommandLine;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM (what Kubernetes sends a pod it stops) for the commands: the first one cancels the
/// token, so the command stops cleanly, keeps what it did and exits 130; a second one is the default (the process ends
/// at once). System.CommandLine's own handling is off (ServiceCommands).
/// </summary>
public sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly PosixSignalRegistration _terminate;

    private Interruption()
    {
        Console.CancelKeyPress += OnCancelKeyPress;
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerminate);
    }

    public CancellationToken Token => _cancel.Token;

    public bool Requested => _cancel.IsCancellationRequested;

    public static Interruption Listen() => new();

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _terminate.Dispose();
        _cancel.Dispose();
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        e.Cancel = !_cancel.IsCancellationRequested;
        _cancel.Cancel();
    }

    private void OnTerminate(PosixSignalContext context)
    {
        context.Cancel = !_cancel.IsCancellationRequested;
        _cancel.Cancel();
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Fuzz;

/// <summary>
/// Slowloris clients: connections that send a multipart upload's headers and then one byte a second, as an
/// attacker holding a service's places would.
/// </summary>
public sealed class StalledUploads : IAsyncDisposable
{
    private readonly List<Socket> _sockets;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _trickle;

    private StalledUploads(List<Socket> sockets)
    {
        _sockets = sockets;
        _trickle = TrickleAsync();
    }

    public static async Task<StalledUploads> OpenAsync(int port, int count, string path = "/embed-image", string field = "file")
    {
        var sockets = new List<Socket>(count);
        const string Boundary = "stall";
        var head = Encoding.ASCII.GetBytes(
            $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={Boundary}\r\nContent-Length: 100000\r\n\r\n" +
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\n\r\n");
        for (var i = 0; i < count; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, port);
            await socket.SendAsync(head);
            sockets.Add(socket);
        }

        return new StalledUploads(sockets);
    }

    /// <summary>What each connection was answered (the start of the response), once it answers or the timeout passes.</summary>
    public async Task<string[]> AnswersAsync(TimeSpan timeout) => await Task.WhenAll(_sockets.Select(s => ReadAnswerAsync(s, timeout)));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _trickle;
        foreach (var socket in _sockets) socket.Dispose();
        _stop.Dispose();
    }

    private async Task TrickleAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(1000, _stop.Token);
                foreach (var socket in _sockets)
                {
                    try
                    {
                        await socket.SendAsync(new byte[] { 0x42 }, _stop.Token);
                    }
                    catch (SocketException)
                    {
                        // Closed by the service after its answer.
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<string> ReadAnswerAsync(Socket socket, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        var length = 0;
        try
        {
            while (length < buffer.Length && !Encoding.ASCII.GetString(buffer, 0, length).Contains("\"detail\"", StringComparison.Ordinal))
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(length), deadline.Token);
                if (read == 0) break;
                length += read;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
        }

        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}

using System.Net;
using System.Net.Sockets;

namespace EmbeddingService.Tests.Support;

/// <summary>
/// Forwards a loopback port to another: stopping it refuses new connections and cuts the open ones, which is what a
/// service sees when its database goes away, without touching the database other tests share.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly int _target;
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;
    private Task _accepting = Task.CompletedTask;

    public TcpProxy(int target)
    {
        _target = target;
        Port = EndToEnd.ServiceProcess.FreePort();
        Start();
    }

    public int Port { get; }

    public void Start()
    {
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        var listener = _listener;
        _accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var client = await listener.AcceptTcpClientAsync();
                    var upstream = new TcpClient();
                    await upstream.ConnectAsync(IPAddress.Loopback, _target);
                    lock (_open)
                    {
                        _open.Add(client);
                        _open.Add(upstream);
                    }

                    _ = Pump(client, upstream);
                    _ = Pump(upstream, client);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Stopped.
            }
        });
    }

    public async Task StopAsync()
    {
        _listener?.Stop();
        await _accepting;
        lock (_open)
        {
            foreach (var client in _open)
            {
                // A reset, as a crashed server's connections end; pumps may have closed some already.
                if (client.Client is { } socket) socket.LingerState = new LingerOption(true, 0);
                client.Dispose();
            }

            _open.Clear();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private static async Task Pump(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
        }
        finally
        {
            to.Dispose();
        }
    }
}

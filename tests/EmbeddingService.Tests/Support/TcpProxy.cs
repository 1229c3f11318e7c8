using System.Net;
using System.Net.Sockets;

namespace EmbeddingService.Tests.Support;

/// <summary>
/// Forwards a loopback port to another: stopping it refuses new connections and cuts the open ones, which is what a
/// service sees when its database goes away, without touching the database other tests share. Given several ports,
/// it is a layer-4 balancer (a Kubernetes Service): each new connection goes to the next one in turn, and stays there.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly int[] _targets;
    private readonly long[] _bytesTo;
    private int _connections;
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;
    private Task _accepting = Task.CompletedTask;

    public TcpProxy(params int[] targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        _targets = targets;
        _bytesTo = new long[targets.Length];
        Port = EndToEnd.ServiceProcess.FreePort();
        Start();
    }

    public int Port { get; }

    /// <summary>Bytes clients sent to each target: for identical requests, how the requests were shared.</summary>
    public long BytesTo(int target) => Interlocked.Read(ref _bytesTo[target]);

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
                    var target = (Interlocked.Increment(ref _connections) - 1) % _targets.Length;
                    await upstream.ConnectAsync(IPAddress.Loopback, _targets[target]);
                    lock (_open)
                    {
                        _open.Add(client);
                        _open.Add(upstream);
                    }

                    _ = Pump(client, upstream, bytes => Interlocked.Add(ref _bytesTo[target], bytes));
                    _ = Pump(upstream, client, _ => { });
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
                // A reset, as a crashed server's connections end; pumps may have closed some already (a pump can
                // close one between the check and the setting, so a closed socket is passed over, not an error).
                try
                {
                    if (client.Client is { } socket) socket.LingerState = new LingerOption(true, 0);
                }
                catch (ObjectDisposedException)
                {
                }

                client.Dispose();
            }

            _open.Clear();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private static async Task Pump(TcpClient from, TcpClient to, Action<int> counted)
    {
        try
        {
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await from.GetStream().ReadAsync(buffer)) > 0)
            {
                counted(read);
                await to.GetStream().WriteAsync(buffer.AsMemory(0, read));
            }
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

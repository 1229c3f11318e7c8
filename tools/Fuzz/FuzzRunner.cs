using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Fuzz;

/// <summary>A case without its bytes: a run of 100,000 cases keeps only these.</summary>
public sealed record FuzzCaseName(string Family, string Name, bool HalfClose);

/// <summary>What the service answered to one case: the status (0 when it answered nothing) and how long it took.</summary>
public sealed record FuzzOutcome(FuzzCaseName Case, int Status, double Milliseconds, string? Detail)
{
    /// <summary>How the answer began and how reading it ended, kept when no detail was found in it (to tell why).</summary>
    public string? Raw { get; init; }

    /// <summary>
    /// The case closed its side mid-body: Kestrel takes that as the client leaving and aborts the request, so no
    /// answer is expected (the service's log shows whether it handled it cleanly).
    /// </summary>
    public bool ClientHungUp => Status == 0 && Case.HalfClose;
}

/// <summary>Counts of a run, by status and by family, with the cases that got a 5xx or no answer.</summary>
public sealed class FuzzReport
{
    private readonly List<FuzzOutcome> _outcomes = [];

    public IReadOnlyList<FuzzOutcome> Outcomes => _outcomes;

    public int Count => _outcomes.Count;

    public int ServerErrors => _outcomes.Count(o => o.Status >= 500 && o.Status != 503);

    public int Unavailable => _outcomes.Count(o => o.Status == 503);

    public int NoAnswer => _outcomes.Count(o => o.Status == 0 && !o.ClientHungUp);

    public int HungUp => _outcomes.Count(o => o.ClientHungUp);

    public IEnumerable<FuzzOutcome> Failures => _outcomes.Where(o => (o.Status == 0 && !o.ClientHungUp) || (o.Status >= 500 && o.Status != 503));

    public SortedDictionary<int, int> ByStatus => new(_outcomes.GroupBy(o => o.Status).ToDictionary(g => g.Key, g => g.Count()));

    internal void Add(FuzzOutcome outcome)
    {
        lock (_outcomes) _outcomes.Add(outcome);
    }

    public string Summary()
    {
        var text = new StringBuilder();
        text.AppendLine($"cases: {Count:N0}");
        text.AppendLine($"by status: {string.Join(", ", ByStatus.Select(s => $"{(s.Key == 0 ? "none" : s.Key.ToString(System.Globalization.CultureInfo.InvariantCulture))} x {s.Value:N0}"))}");
        foreach (var family in _outcomes.GroupBy(o => o.Case.Family).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            text.AppendLine($"  {family.Key}: {string.Join(", ", family.GroupBy(o => o.Status).OrderBy(g => g.Key).Select(g => $"{g.Key} x {g.Count():N0}"))}");
        }

        text.AppendLine($"5xx (503 excluded): {ServerErrors}; 503: {Unavailable}; no answer: {NoAnswer}; client hung up mid-body (no answer expected): {HungUp}");
        foreach (var failure in Failures.Take(20))
        {
            text.AppendLine($"  FAILED {failure.Status} {failure.Case.Name}: {failure.Detail}");
        }

        return text.ToString();
    }
}

/// <summary>Sends cases as raw bytes over TCP, several at once, and reads each answer's status line.</summary>
public static class FuzzRunner
{
    public static async Task<FuzzReport> RunAsync(string host, int port, IEnumerable<FuzzCase> cases, int concurrency, TimeSpan perCase,
        Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var report = new FuzzReport();
        using var enumerator = cases.GetEnumerator();
        var done = 0;
        async Task Worker()
        {
            while (true)
            {
                FuzzCase next;
                lock (enumerator)
                {
                    if (!enumerator.MoveNext()) return;
                    next = enumerator.Current;
                }

                report.Add(await SendAsync(host, port, next, perCase, cancellationToken));
                progress?.Invoke(Interlocked.Increment(ref done));
            }
        }

        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Worker, cancellationToken)));
        return report;
    }

    public static async Task<FuzzOutcome> SendAsync(string host, int port, FuzzCase fuzzCase, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fuzzCase);
        var name = new FuzzCaseName(fuzzCase.Family, fuzzCase.Name, fuzzCase.HalfClose);
        var clock = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, LingerState = new LingerOption(true, 0) };
        try
        {
            await socket.ConnectAsync(host, port, deadline.Token);
            // The service may answer (and stop reading) before the whole body is sent: send and read at once.
            var send = SendBodyAsync(socket, fuzzCase, deadline.Token);
            var (status, detail, raw) = await ReadStatusAsync(socket, deadline.Token);
            await send;
            return new FuzzOutcome(name, status, clock.Elapsed.TotalMilliseconds, detail) { Raw = detail is null ? raw : null };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new FuzzOutcome(name, 0, clock.Elapsed.TotalMilliseconds, $"no answer within {timeout.TotalSeconds:F0} s");
        }
        catch (SocketException e)
        {
            return new FuzzOutcome(name, 0, clock.Elapsed.TotalMilliseconds, e.Message);
        }
    }

    private static async Task SendBodyAsync(Socket socket, FuzzCase fuzzCase, CancellationToken cancellationToken)
    {
        try
        {
            await socket.SendAsync(fuzzCase.Request, SocketFlags.None, cancellationToken);
            if (fuzzCase.HalfClose) socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The service answered and closed before taking the whole body: its answer is what counts.
        }
    }

    /// <summary>Reads the status line and, for error answers, the problem's <c>detail</c> if it comes within the first few KB.</summary>
    private static async Task<(int Status, string? Detail, string Raw)> ReadStatusAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        var length = 0;
        var ended = "buffer full";
        while (length < buffer.Length)
        {
            int read;
            try
            {
                read = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, cancellationToken);
            }
            catch (SocketException e) when (length == 0)
            {
                return (0, $"connection failed before any answer: {e.SocketErrorCode}", e.SocketErrorCode.ToString());
            }
            catch (SocketException e)
            {
                ended = $"{e.SocketErrorCode} after {length} bytes";
                break;
            }

            if (read == 0)
            {
                ended = $"closed after {length} bytes";
                break;
            }

            length += read;
            // Enough once the headers are in and the body's first part (the error's detail) with them: up to its
            // Content-Length, to the last chunk of a chunked body, or 4 KB.
            var text = Encoding.ASCII.GetString(buffer, 0, length);
            var headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (headerEnd >= 0 && BodyComplete(text[..headerEnd], text[(headerEnd + 4)..]))
            {
                ended = "complete";
                break;
            }
        }

        var response = Encoding.UTF8.GetString(buffer, 0, length);
        var raw = $"{ended}: {response[..Math.Min(400, response.Length)].ReplaceLineEndings("\\n")}";
        if (!response.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) || response.Length < 12
            || !int.TryParse(response.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture, out var status))
        {
            return (0, length == 0 ? "connection closed without an answer" : $"not HTTP: {response[..Math.Min(40, response.Length)]}", raw);
        }

        // A problem's "detail", or the "message" of an error in OpenAI's shape, in the body (de-chunked: a chunk may
        // begin anywhere, even between "detail": and its value).
        var body = Body(response);
        var detailAt = body.IndexOf("\"detail\":\"", StringComparison.Ordinal) is >= 0 and var d ? d + 10
            : body.IndexOf("\"message\":\"", StringComparison.Ordinal) is >= 0 and var m ? m + 11 : -1;
        var detail = detailAt < 0 ? null : body[detailAt..].Split('"')[0];
        return (status, detail, raw);
    }

    /// <summary>The body of a response, its chunks joined when it is chunked (as far as it was read).</summary>
    private static string Body(string response)
    {
        var headerEnd = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (headerEnd < 0) return string.Empty;
        var body = response[(headerEnd + 4)..];
        if (!response[..headerEnd].Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)) return body;
        var joined = new StringBuilder();
        var at = 0;
        while (at < body.Length)
        {
            var lineEnd = body.IndexOf("\r\n", at, StringComparison.Ordinal);
            if (lineEnd < 0 || !int.TryParse(body.AsSpan(at, lineEnd - at), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var size) || size == 0)
            {
                break;
            }

            // Sizes count bytes and the text here is decoded: close enough for finding a detail's opening quote.
            var start = lineEnd + 2;
            var length = Math.Min(size, body.Length - start);
            joined.Append(body, start, length);
            at = start + length + 2;
        }

        return joined.ToString();
    }

    private static bool BodyComplete(string headers, string body)
    {
        if (body.Length >= 4096)
        {
            return true;
        }

        foreach (var line in headers.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)
                && int.TryParse(line.AsSpan(15).Trim(), System.Globalization.CultureInfo.InvariantCulture, out var length))
            {
                return body.Length >= length;
            }

            if (line.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && line.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            {
                return body.StartsWith("0\r\n", StringComparison.Ordinal) || body.Contains("\r\n0\r\n", StringComparison.Ordinal);
            }
        }

        // Neither: the body ends when the connection closes.
        return false;
    }
}

/// <summary>Samples a process's resident memory while a run goes on.</summary>
public sealed class ResidentMemory : IAsyncDisposable
{
    private readonly int _pid;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampler;

    public ResidentMemory(int pid)
    {
        _pid = pid;
        Start = Peak = Now();
        _sampler = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Peak = Math.Max(Peak, Now());
                try
                {
                    await Task.Delay(50, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
    }

    public double Start { get; }

    public double Peak { get; private set; }

    /// <summary>VmRSS of the process in MiB, or NaN when it is gone.</summary>
    public double Now()
    {
        try
        {
            var line = File.ReadLines($"/proc/{_pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return double.Parse(line.Split(':')[1].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException)
        {
            return double.NaN;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _sampler;
        _stop.Dispose();
    }
}

using System.Buffers;
using System.IO.Pipelines;

namespace EmbeddingService.Uploads;

/// <summary>
/// The request body as a read-only stream whose reads end cleanly when their token fires. Kestrel's own body stream
/// leaves its reader "reading" when a token cancels a pending read, so its automatic drain after the answer fails
/// and logs an error with a stack trace for every client that missed UPLOAD_TIMEOUT_S. Here a cancelled read goes
/// through <see cref="PipeReader.CancelPendingRead"/> and is completed (<see cref="PipeReader.AdvanceTo(SequencePosition)"/>)
/// before the cancellation is thrown.
/// </summary>
internal sealed class RequestBodyStream(PipeReader reader) : Stream
{
    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ReadResult result;
        using (cancellationToken.UnsafeRegister(static state => ((PipeReader)state!).CancelPendingRead(), reader))
        {
            result = await reader.ReadAsync(CancellationToken.None);
        }

        if (result.IsCanceled)
        {
            reader.AdvanceTo(result.Buffer.Start);
            cancellationToken.ThrowIfCancellationRequested();
            throw new OperationCanceledException("The read was canceled.");
        }

        // The length is taken before AdvanceTo: the pipe reuses the segments, and a sequence's length comes from them.
        var length = (int)Math.Min(buffer.Length, result.Buffer.Length);
        var available = result.Buffer.Slice(0, length);
        available.CopyTo(buffer.Span);
        reader.AdvanceTo(available.End);
        return length;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Request bodies are read asynchronously.");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

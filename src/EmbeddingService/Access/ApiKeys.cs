using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Access;

/// <summary>
/// The accepted API keys, held as SHA-256 digests: a presented key is hashed and compared with every digest in
/// constant time, so neither the comparison's time nor a memory dump gives a key away. Keys from API_KEYS_FILE are
/// re-read when the file changes (a rotated Kubernetes secret), at most every few seconds.
/// </summary>
public sealed class ApiKeys
{
    private static readonly TimeSpan FileCheckInterval = TimeSpan.FromSeconds(2);
    private readonly byte[][] _fromEnvironment;
    private readonly string? _file;
    private readonly Lock _reload = new();
    private volatile byte[][] _fromFile = [];
    private DateTime _fileWritten;
    private long _nextFileCheck;

    public ApiKeys(IOptions<AccessOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _fromEnvironment = [.. Split(options.Value.ApiKeys?.Split(',') ?? []).Select(Digest)];
        _file = string.IsNullOrWhiteSpace(options.Value.ApiKeysFile) ? null : options.Value.ApiKeysFile;
        if (_file is not null)
        {
            ReloadFile();
        }
    }

    /// <summary>Whether keys are required: set when the service starts, by API_KEYS or API_KEYS_FILE.</summary>
    public bool Enabled => _fromEnvironment.Length > 0 || _file is not null;

    /// <summary>How many keys are accepted now.</summary>
    public int Count => _fromEnvironment.Length + _fromFile.Length;

    /// <summary>
    /// The key's id when it is an accepted key, else null: a short, stable, non-secret name (its digest's first 12
    /// hex digits) for rate limits and logs.
    /// </summary>
    public string? Match(string presented)
    {
        ArgumentNullException.ThrowIfNull(presented);
        ReloadFileIfDue();
        var digest = Digest(presented);
        var match = false;
        // Every digest is compared, whether or not one already matched.
        foreach (var key in _fromEnvironment) match |= CryptographicOperations.FixedTimeEquals(digest, key);
        foreach (var key in _fromFile) match |= CryptographicOperations.FixedTimeEquals(digest, key);
        return match ? Convert.ToHexStringLower(digest.AsSpan(0, 6)) : null;
    }

    private static byte[] Digest(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static IEnumerable<string> Split(IEnumerable<string> keys) => keys.Select(k => k.Trim()).Where(k => k.Length > 0 && !k.StartsWith('#'));

    private void ReloadFileIfDue()
    {
        var now = Environment.TickCount64;
        if (_file is null || now < Volatile.Read(ref _nextFileCheck)) return;
        lock (_reload)
        {
            if (now < _nextFileCheck) return;
            _nextFileCheck = now + (long)FileCheckInterval.TotalMilliseconds;
            if (File.GetLastWriteTimeUtc(_file) != _fileWritten) ReloadFile();
        }
    }

    private void ReloadFile()
    {
        try
        {
            _fileWritten = File.GetLastWriteTimeUtc(_file!);
            _fromFile = [.. Split(File.ReadAllLines(_file!)).Select(Digest)];
        }
        catch (IOException)
        {
            // Mid-rotation: keep the keys already read and look again at the next check.
        }
    }
}

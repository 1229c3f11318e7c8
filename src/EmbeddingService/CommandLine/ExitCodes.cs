namespace EmbeddingService.CommandLine;

/// <summary>One table of exit codes for the server and every command (README, "Commands and exit codes").</summary>
public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>The command ran, but some items failed (each named in its summary), or the model could not be had.</summary>
    public const int Failed = 1;

    /// <summary>Unknown command or argument, a malformed value, or a setting out of its range.</summary>
    public const int Usage = 2;

    /// <summary>The database holds vectors of another model, variant or dimension, or a store the command cannot use as it is (migrate first; pgvector too old).</summary>
    public const int StoreMismatch = 3;

    /// <summary>The database cannot be reached, or stopped answering during the run (what was written is kept).</summary>
    public const int DatabaseUnreachable = 4;

    /// <summary>Stopped by Ctrl-C (SIGINT): what was done is kept.</summary>
    public const int Interrupted = 130;
}

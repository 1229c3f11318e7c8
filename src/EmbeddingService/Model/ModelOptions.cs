using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace EmbeddingService.Model;

/// <summary>Where the model lives and how to fetch it; bound from environment variables of the same names.</summary>
public sealed class ModelOptions : IValidatableObject
{
    /// <summary>The model directory; unset, a folder of the cache named after MODEL_REPO (<see cref="Directory"/>).</summary>
    [ConfigurationKeyName("MODEL_DIR")]
    public string? ModelDir { get; set; }

    /// <summary>MODEL_DIR, else <c>~/.cache/embedding-service/&lt;name of MODEL_REPO&gt;</c>: each model a folder of its own.</summary>
    public string Directory => ModelDir is { Length: > 0 } set ? set : DefaultDirectoryFor(Repository);

    [ConfigurationKeyName("MODEL_VARIANT")]
    public ModelVariant Variant { get; set; } = ModelVariant.Fp32;

    [ConfigurationKeyName("MODEL_AUTO_DOWNLOAD")]
    public bool AutoDownload { get; set; } = true;

    [ConfigurationKeyName("HF_ENDPOINT")]
    [Url]
    public string HubEndpoint { get; set; } = "https://huggingface.co";

    [ConfigurationKeyName("MODEL_REPO")]
    [Required]
    public string Repository { get; set; } = "Xenova/clip-vit-base-patch32";

    [ConfigurationKeyName("MODEL_REVISION")]
    [Required]
    public string Revision { get; set; } = "main";

    [ConfigurationKeyName("HF_TOKEN")]
    public string? HubToken { get; set; }

    /// <summary>Attempts per file before the download gives up.</summary>
    [ConfigurationKeyName("DOWNLOAD_ATTEMPTS")]
    [Range(1, 20)]
    public int DownloadAttempts { get; set; } = 4;

    /// <summary>Pause before the first retry; it doubles with each further one.</summary>
    [ConfigurationKeyName("DOWNLOAD_RETRY_DELAY_MS")]
    [Range(0, 60_000)]
    public int DownloadRetryDelayMs { get; set; } = 1000;

    /// <summary>A connection that sends nothing for this long is dropped and the file resumed.</summary>
    [ConfigurationKeyName("DOWNLOAD_STALL_TIMEOUT_S")]
    [Range(1, 3600)]
    public int DownloadStallTimeoutSeconds { get; set; } = 60;

    /// <summary>Which towers to load: <c>vision,text</c> (default), <c>vision</c> or <c>text</c>.</summary>
    [ConfigurationKeyName("MODEL_TOWERS")]
    public string Towers { get; set; } = "vision,text";

    public ModelFiles Files => new(Directory, Variant, ModelTowersParser.Parse(Towers));

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        string? error = null;
        try
        {
            ModelTowersParser.Parse(Towers);
        }
        catch (FormatException e)
        {
            error = e.Message;
        }

        if (error is not null)
        {
            yield return new ValidationResult(error, [nameof(Towers)]);
        }

        if (Repository.Split('/') is not [{ Length: > 0 } owner, { Length: > 0 } name] || owner is "." or ".." || name is "." or ".."
            || Repository.IndexOfAny(['\\', ' ', '?', '#', ':']) >= 0)
        {
            yield return new ValidationResult($"MODEL_REPO must be a Hugging Face repository 'owner/name', such as Xenova/clip-vit-large-patch14; got '{Repository}'.",
                [nameof(Repository)]);
        }
    }

    /// <summary>The cache folder of a repository: its name (the default stays <c>clip-vit-base-patch32</c>, where earlier versions put it).</summary>
    public static string DefaultDirectoryFor(string repository)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(cache, "embedding-service", repository[(repository.LastIndexOf('/') + 1)..]);
    }
}

using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace EmbeddingService.Uploads;

public static class UploadServiceCollectionExtensions
{
    /// <summary>The upload receiver, and Kestrel's own limits on bodies (size, minimum data rate) from the same options.</summary>
    public static WebApplicationBuilder AddUploads(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<UploadOptions>().Bind(builder.Configuration).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<UploadReceiver>();
        builder.WebHost.ConfigureKestrel((_, kestrel) =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<IOptions<UploadOptions>>().Value;
            // Multipart framing adds a little to the file itself; the file's own limit is checked while reading.
            kestrel.Limits.MaxRequestBodySize = options.MaxUploadBytes + (64 * 1024);
            kestrel.Limits.MinRequestBodyDataRate = options.UploadMinBytesPerSecond > 0
                ? new MinDataRate(options.UploadMinBytesPerSecond, TimeSpan.FromSeconds(5))
                : null;
        });
        return builder;
    }
}

using EmbeddingService.Api;
using EmbeddingService.Hosting;
using EmbeddingService.Uploads;

if (args is [DownloadModelCommand.Name, .. var downloadArgs])
{
    return await DownloadModelCommand.RunAsync(downloadArgs);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceLogging();
builder.AddApi();
builder.AddUploads();
builder.Services.AddModel(builder.Configuration);
builder.Services.AddImageEmbedding(builder.Configuration);

var app = builder.Build();
app.UseProblemResponses();
app.MapServiceInfo();
app.MapHealth();
app.MapEmbedImage();
app.MapEmbedText();
app.MapEmbedImages();
app.MapOpenAiEmbeddings();
app.MapApiDocs();
app.Run();
return 0;

/// <summary>Entry point, visible to the in-process test host.</summary>
public partial class Program;

using EmbeddingService.Api;
using EmbeddingService.Hosting;
using EmbeddingService.Indexing;
using EmbeddingService.Storage;
using EmbeddingService.Ui;
using EmbeddingService.Uploads;

if (args is [DownloadModelCommand.Name, .. var downloadArgs])
{
    return await DownloadModelCommand.RunAsync(downloadArgs);
}

if (args is [QuantizeCommand.Name, .. var quantizeArgs])
{
    return QuantizeCommand.Run(quantizeArgs);
}

if (args is [IndexCommand.Name, .. var indexArgs])
{
    return await IndexCommand.RunAsync(indexArgs);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceLogging();
builder.AddApi();
builder.AddUploads();
builder.Services.AddModel(builder.Configuration);
builder.Services.AddImageEmbedding(builder.Configuration);
builder.Services.AddStorage(builder.Configuration);

var app = builder.Build();
app.UseProblemResponses();
app.MapUi();
app.MapServiceInfo();
app.MapHealth();
app.MapEmbedImage();
app.MapEmbedText();
app.MapEmbedImages();
app.MapOpenAiEmbeddings();
app.MapItems();
app.MapSearch();
app.MapApiDocs();
app.Run();
// Non-zero when start-up refused to run (a database holding another model's vectors).
return Environment.ExitCode;

/// <summary>Entry point, visible to the in-process test host.</summary>
public partial class Program;

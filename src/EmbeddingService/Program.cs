using EmbeddingService.Access;
using EmbeddingService.Api;
using EmbeddingService.Hosting;
using EmbeddingService.Indexing;
using EmbeddingService.Storage;
using EmbeddingService.Telemetry;
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
builder.Services.AddAccessControl(builder.Configuration);
builder.Services.AddReadinessChecks();
builder.Services.AddGracefulShutdown(builder.Configuration);
builder.Services.AddTelemetry();

var app = builder.Build();
app.UseRequestLogging();
app.UseProblemResponses();
app.UseRefusalCounting();
app.UseDraining();
app.MapUi();
app.UseAccessControl();
app.MapMetrics();
app.MapServiceInfo();
app.MapHealth();
app.MapEmbedImage();
app.MapEmbedText();
app.MapEmbedImages();
app.MapOpenAiEmbeddings();
app.MapItems();
app.MapSearch();
app.MapApiDocs();
return app.RunService();

/// <summary>Entry point, visible to the in-process test host.</summary>
public partial class Program;

using EmbeddingService.Access;
using EmbeddingService.Api;
using EmbeddingService.Classification;
using EmbeddingService.CommandLine;
using EmbeddingService.Connections;
using EmbeddingService.Logging;
using EmbeddingService.ModelLifecycle;
using EmbeddingService.Probes;
using EmbeddingService.Shutdown;
using EmbeddingService.Storage;
using EmbeddingService.Telemetry;
using EmbeddingService.Ui;
using EmbeddingService.Uploads;

// With no command: the server. download-model, quantize and index are commands (CommandLine/ServiceCommands).
return await ServiceCommands.InvokeAsync(args, Serve);

static int Serve(string[] hostArgs)
{
    var builder = WebApplication.CreateBuilder(hostArgs);
    builder.AddServiceLogging();
    builder.AddApi();
    builder.AddUploads();
    builder.Services.AddModel(builder.Configuration);
    builder.Services.AddImageEmbedding(builder.Configuration);
    builder.Services.AddStorage(builder.Configuration);
    builder.Services.AddClassification(builder.Configuration);
    builder.Services.AddAccessControl(builder.Configuration);
    builder.Services.AddReadinessChecks();
    builder.Services.AddGracefulShutdown(builder.Configuration);
    builder.Services.AddConnectionLifetime(builder.Configuration);
    builder.Services.AddTelemetry();

    var app = builder.Build();
    app.UseRequestLogging();
    app.UseProblemResponses();
    app.UseRefusalCounting();
    app.UseDraining();
    app.UseConnectionLifetime();
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
    app.MapDuplicates();
    app.MapClassify();
    app.MapApiDocs();
    return app.RunService();
}

/// <summary>Entry point, visible to the in-process test host.</summary>
public partial class Program;

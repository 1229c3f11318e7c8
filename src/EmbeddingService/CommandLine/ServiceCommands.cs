using System.CommandLine;
using System.CommandLine.Parsing;
using EmbeddingService.Download;
using EmbeddingService.Quantization;
using EmbeddingService.Indexing;
using EmbeddingService.Model;
using Microsoft.Extensions.Configuration;
using Onnx;

namespace EmbeddingService.CommandLine;

/// <summary>
/// The service's command line, declared once: with no command it serves the HTTP API; <c>download-model</c>,
/// <c>quantize</c>, <c>index</c>, <c>import</c> and <c>migrate</c> are commands. Anything else, or a malformed value, ends with a sentence and exit
/// code 2 (<see cref="ExitCodes.Usage"/>): a mistyped command never starts the server.
/// </summary>
public static class ServiceCommands
{
    /// <summary>Settings ASP.NET Core's hosting (and its test host) passes to the entry point, besides the service's own.</summary>
    private static readonly string[] HostSettings = ["contentRoot", "environment", "applicationName"];

    /// <summary>Every setting name the service reads (its options' configuration keys), as <c>--NAME=value</c> may give them.</summary>
    private static readonly HashSet<string> SettingNames = new(
        typeof(ServiceCommands).Assembly.GetTypes()
            .SelectMany(t => t.GetProperties())
            .Select(p => p.GetCustomAttributes(typeof(ConfigurationKeyNameAttribute), false).OfType<ConfigurationKeyNameAttribute>().FirstOrDefault()?.Name)
            .OfType<string>()
            .Concat(["LOG_LEVEL", "LOG_FORMAT", .. HostSettings]),
        StringComparer.OrdinalIgnoreCase);

    public static Task<int> InvokeAsync(string[] args, Func<string[], int> serve)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(serve);
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var model = new ModelOptions();
        configuration.Bind(model);
        var root = new RootCommand("Visual search embedding service: CLIP embeddings of images and texts over HTTP, stored and searched in " +
            "PostgreSQL + pgvector. With no command it serves the API on PORT (8000); settings are environment variables (README).");
        // The server also takes settings as --NAME=value (ASP.NET Core's command-line configuration, as its test host
        // passes them), but only names it reads: a misspelt one is refused like any unknown argument.
        var settings = args.TakeWhile(IsSetting).ToArray();
        root.SetAction(_ =>
        {
            try
            {
                return serve(settings);
            }
            catch (Exception e) when (ServiceRunner.IsConfigurationError(e))
            {
                // Kestrel reads HOST and PORT while the application is built, before RunService checks the rest.
                return ServiceRunner.ExplainConfigurationError(e);
            }
        });
        root.Subcommands.Add(DownloadModel(model));
        root.Subcommands.Add(Quantize(model));
        root.Subcommands.Add(Index());
        root.Subcommands.Add(Import());
        root.Subcommands.Add(Migrate());
        root.Subcommands.Add(FindDuplicates());
        root.Subcommands.Add(Tag());
        return InvokeAsync(root, args[settings.Length..]);
    }

    private static bool IsSetting(string token) =>
        token.StartsWith("--", StringComparison.Ordinal) && token.IndexOf('=', StringComparison.Ordinal) is > 2 and var equals && SettingNames.Contains(token[2..equals]);

    /// <summary>Parses and runs; parse errors are printed with a pointer to --help and give exit code 2, not the library's 1.</summary>
    private static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var error in result.Errors) await Console.Error.WriteLineAsync(error.Message);
            var command = result.CommandResult.Command;
            await Console.Error.WriteLineAsync($"Run 'EmbeddingService {(command is RootCommand ? string.Empty : command.Name + " ")}--help' for usage.");
            return ExitCodes.Usage;
        }

        // The server drains on SIGTERM and the indexer stops cleanly on the first Ctrl-C, each by its own handler:
        // System.CommandLine's own handling (cancel, then end the process after 2 s) is switched off. A setting of the
        // wrong form or range found by a command (options are validated when first read) is one sentence and exit 2,
        // as for the server (ServiceRunner), not the library's stack trace.
        try
        {
            return await result.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (ServiceRunner.IsConfigurationError(e))
        {
            return ServiceRunner.ExplainConfigurationError(e);
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Interrupted;
        }
        catch (Exception e)
        {
            // What the library's handler did for anything else: the exception, exit 1.
            await Console.Error.WriteLineAsync($"Unhandled exception: {e}");
            return ExitCodes.Failed;
        }
    }

    /// <summary>A number in its range, or a parse error that says what the option takes.</summary>
    private static double Number(ArgumentResult result, string expected, Func<double, bool> valid)
    {
        if (result.Tokens is [var token] && double.TryParse(token.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) && valid(value))
        {
            return value;
        }

        result.AddError(expected);
        return 0;
    }

    private static Option<string> DirectoryOption(ModelOptions model) => new("--dir")
    {
        Description = "The model directory (Hugging Face / Xenova layout). Default: MODEL_DIR",
        DefaultValueFactory = _ => model.Directory,
        HelpName = "DIR",
    };

    private static Command DownloadModel(ModelOptions model)
    {
        var directory = DirectoryOption(model);
        var command = new Command(DownloadModelCommand.Name, "Downloads the model (MODEL_REPO at MODEL_REVISION) into the model directory and exits.") { directory };
        command.SetAction((result, _) => DownloadModelCommand.RunAsync(result.GetValue(directory)!));
        return command;
    }

    private static Command Quantize(ModelOptions model)
    {
        var directory = DirectoryOption(model);
        var variant = new Option<string>("--variant") { Description = "What to write beside the fp32 towers", DefaultValueFactory = _ => VariantRewriter.Quantized };
        variant.AcceptOnlyFromAmong(VariantRewriter.Quantized, VariantRewriter.Float16);
        var op = new Option<string>("--operator") { Description = "int8 operator: ONNX Runtime's contrib DynamicQuantizeMatMul, or standard ONNX", DefaultValueFactory = _ => "contrib" };
        op.AcceptOnlyFromAmong("contrib", "standard");
        var scheme = new Option<string>("--scheme") { Description = "int8 weights (docs/decisions.md, \"int8 on every CPU\")", DefaultValueFactory = _ => "full" };
        scheme.AcceptOnlyFromAmong([.. QuantizeCommand.Schemes.Keys]);
        var maxError = new Option<double>("--max-error")
        {
            Description = "Largest 1 - cos against fp32 on the probe set that is accepted",
            DefaultValueFactory = _ => QuantizeCommand.DefaultMaxError,
            CustomParser = r => Number(r, "--max-error takes a number above 0 and below 2, such as 1e-3.", v => v is > 0 and < 2),
        };
        var probeImages = new Option<DirectoryInfo>("--probe-images") { Description = "A folder of images to check with (default: 12 generated images)", HelpName = "DIR" };
        probeImages.AcceptExistingOnly();
        var force = new Option<bool>("--force") { Description = "Move the variant into place even beyond --max-error (says so loudly)" };
        var command = new Command(QuantizeCommand.Name, "Writes the int8 (onnx/*_quantized.onnx) or fp16 (onnx/*_fp16.onnx) towers beside a model's fp32 ones, " +
            "after checking them against fp32 on this CPU.") { directory, variant, op, scheme, maxError, probeImages, force };
        command.SetAction(result => QuantizeCommand.Run(new QuantizeCommand.Settings(
            result.GetValue(directory)!,
            result.GetValue(variant) == VariantRewriter.Float16 ? ModelVariant.Fp16 : ModelVariant.Quantized,
            result.GetValue(op) == "standard" ? Int8Operator.MatMulInteger : Int8Operator.DynamicQuantizeMatMul,
            QuantizeCommand.Schemes[result.GetValue(scheme)!],
            result.GetValue(maxError),
            result.GetValue(probeImages)?.FullName,
            result.GetValue(force))));
        return command;
    }

    private static Command Import()
    {
        var file = new Argument<FileInfo>("file") { Description = "JSON lines: {\"id\": ..., \"embedding\": [the model's dimension of numbers: 512 for ViT-B/32], \"metadata\": {...}}", Arity = ArgumentArity.ZeroOrOne };
        var database = new Option<string>("--from-database") { Description = "Read the vectors from this database (postgresql:// URL) instead of a file", HelpName = "URL" };
        var query = new Option<string>("--query") { Description = "With --from-database: the rows' id, embedding and, optionally, metadata", HelpName = "SQL" };
        var variant = new Option<string>("--variant") { Description = "The variant the vectors came from (the store refuses mixing, as the service does)", DefaultValueFactory = _ => "fp32" };
        variant.AcceptOnlyFromAmong("fp32", "int8", "fp16");
        var command = new Command(Importing.ImportCommand.Name, "Writes vectors computed elsewhere into the store (DATABASE_URL), without the model: from a " +
            "JSON-lines file, or from another database's table. Bad rows are named and skipped; a rerun skips what is stored already.") { file, database, query, variant };
        command.Validators.Add(result =>
        {
            var fromFile = result.GetValue(file) is not null;
            var fromDatabase = result.GetValue(database) is not null;
            if (fromFile == fromDatabase) result.AddError("Give either a FILE or --from-database URL --query SQL.");
            else if (result.GetValue(file) is { Exists: false } missing) result.AddError($"File does not exist: '{missing.FullName}'.");
            else if (fromDatabase != (result.GetValue(query) is not null)) result.AddError("--from-database and --query go together.");
        });
        command.SetAction(async (result, _) =>
        {
            using var interruption = Interruption.Listen();
            return await Importing.ImportCommand.RunAsync(new Importing.ImportSettings(
                result.GetValue(file)?.FullName, result.GetValue(database), result.GetValue(query), result.GetValue(variant)!), interruption.Token);
        });
        return command;
    }

    private static Command Migrate()
    {
        var command = new Command(Storage.MigrateCommand.Name, "Moves the store in DATABASE_URL from an earlier layout to today's, online: the previous version " +
            "keeps serving while the items are copied; a short swap ends it. Resumes where an interrupted run stopped.");
        command.SetAction(async (_, _) =>
        {
            using var interruption = Interruption.Listen();
            return await Storage.MigrateCommand.RunAsync(interruption.Token);
        });
        return command;
    }

    private static Command FindDuplicates()
    {
        var maxDistance = new Option<double?>("--max-distance")
        {
            Description = "Cosine distance within which items are near duplicates (default DUPLICATE_MAX_DISTANCE, 0.01)",
            HelpName = "D",
            CustomParser = r => Number(r, "--max-distance takes a cosine distance above 0 and at most 0.1, such as 0.01.", v => v is > 0 and <= 0.1),
        };
        var output = new Option<FileInfo>("--out") { Description = "Write every group as a JSON line, as GET /duplicates gives them", HelpName = "FILE" };
        var workers = WholeNumber("--workers", "Connections scanning at once", 2, 1, 64);
        var command = new Command(Duplicates.DuplicatesCommand.Name, "Checks the whole catalogue (DATABASE_URL) for duplicates from its stored vectors: each item " +
            "not yet checked gets its nearest neighbours through the vector index; then the groups are counted. Resumes where it stopped.") { maxDistance, output, workers };
        command.SetAction(async (result, _) =>
        {
            using var interruption = Interruption.Listen();
            return await Duplicates.DuplicatesCommand.RunAsync(result.GetValue(maxDistance), result.GetValue(output)?.FullName, result.GetValue(workers), interruption.Token);
        });
        return command;
    }

    private static Command Tag()
    {
        var labels = new Option<FileInfo>("--labels") { Description = "The labels, one a line (2 to 1,000)", HelpName = "FILE", Required = true };
        labels.AcceptExistingOnly();
        var key = new Option<string>("--key") { Description = "The metadata key the best label is written under", HelpName = "NAME", Required = true };
        key.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is not { Length: > 0 and <= 256 } name || name.Any(char.IsControl)) r.AddError("--key takes a name of 1 to 256 characters.");
        });
        var templates = new Option<FileInfo>("--templates") { Description = "Templates holding {}, one a line (default: a product-photo prompt set)", HelpName = "FILE" };
        templates.AcceptExistingOnly();
        var filter = new Option<string>("--filter") { Description = "Only items whose metadata contains this JSON object, e.g. {\"category\": \"bags\"}", HelpName = "JSON" };
        filter.Validators.Add(r =>
        {
            try
            {
                using var document = System.Text.Json.JsonDocument.Parse(r.GetValueOrDefault<string>() ?? "{}");
                if (document.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object) r.AddError("--filter takes a JSON object, e.g. {\"category\": \"bags\"}.");
            }
            catch (System.Text.Json.JsonException e)
            {
                r.AddError($"--filter is not valid JSON: {e.Message}");
            }
        });
        var minScore = new Option<double>("--min-score")
        {
            Description = "Write a label only when its score (softmax over the labels) is at least this",
            DefaultValueFactory = _ => 0,
            CustomParser = r => Number(r, "--min-score takes a number from 0 to 1.", v => v is >= 0 and <= 1),
        };
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would be written, write nothing" };
        var command = new Command(Classification.TagCommand.Name, "Writes each stored item's best label (zero-shot, from its stored vector) into its metadata " +
            "under --key; items below --min-score are named and left alone. A rerun writes only what changed.") { labels, key, templates, filter, minScore, dryRun };
        command.SetAction(async (result, _) =>
        {
            using var interruption = Interruption.Listen();
            return await Classification.TagCommand.RunAsync(new Classification.TagSettings(result.GetValue(labels)!.FullName, result.GetValue(key)!,
                result.GetValue(templates)?.FullName, result.GetValue(filter), result.GetValue(minScore), result.GetValue(dryRun)), interruption.Token);
        });
        return command;
    }

    private static Command Index()
    {
        var folder = new Argument<DirectoryInfo>("folder") { Description = "The folder of images (searched recursively); or give --manifest", Arity = ArgumentArity.ZeroOrOne };
        folder.AcceptExistingOnly();
        var manifest = new Option<string>("--manifest")
        {
            Description = "JSON lines {\"id\", \"path\" | \"url\", \"metadata\"?}: a file or an http(s) URL, read as it comes; a path is relative to the manifest",
            HelpName = "FILE|URL",
        };
        var metadata = new Option<FileInfo>("--metadata") { Description = "With a folder: JSON lines {\"id\": ..., other properties are the item's metadata}", HelpName = "FILE" };
        metadata.AcceptExistingOnly();
        var id = new Option<string>("--id") { Description = "With a folder: an item's id is its file name, or its path relative to the folder", DefaultValueFactory = _ => "name" };
        id.AcceptOnlyFromAmong("name", "path");
        var batch = new Option<int>("--batch")
        {
            Description = "Images being embedded at once",
            DefaultValueFactory = _ => 32,
            CustomParser = r => (int)Number(r, "--batch takes a whole number from 1 to 1024.", v => v is >= 1 and <= 1024 && v == Math.Floor(v)),
        };
        var shard = new Option<Shard>("--shard")
        {
            Description = "Index only shard I of N (I from 0, e.g. $JOB_COMPLETION_INDEX/4): N processes given the same input index it together, each item once",
            HelpName = "I/N",
            DefaultValueFactory = _ => Shard.Whole,
            CustomParser = r =>
            {
                var parsed = Shard.Parse(r.Tokens.Count == 1 ? r.Tokens[0].Value : string.Empty, out var error);
                if (parsed is null) r.AddError(error!);
                return parsed ?? Shard.Whole;
            },
        };
        var downloads = WholeNumber("--downloads", "Images fetched by URL at once", 16, 1, 1024);
        var perHost = WholeNumber("--per-host", "Connections to one image server at once", 8, 1, 256);
        var connectTimeout = WholeNumber("--connect-timeout", "Seconds to connect to an image server", 10, 1, 600);
        var readTimeout = WholeNumber("--read-timeout", "Seconds a server may stay silent (for the headers, and between two reads of an image)", 30, 1, 3600);
        var retries = WholeNumber("--retries", "Further tries after a timeout, a broken connection, 408, 429 or 5xx", 3, 0, 20);
        var recheck = new Option<bool>("--recheck") { Description = "Fetch URLs already stored with the same metadata to compare their images (else they are skipped unfetched)" };
        var skipDuplicates = new Option<bool>("--skip-duplicates") { Description = "Do not store an item that arrives with a stored one within DUPLICATE_MAX_DISTANCE (named in the summary)" };
        var command = new Command(IndexCommand.Name, "Embeds a catalogue's images (a folder, or a manifest of paths and URLs) into the store (DATABASE_URL); a rerun skips what is stored.")
        {
            folder, manifest, metadata, id, batch, shard, downloads, perHost, connectTimeout, readTimeout, retries, recheck, skipDuplicates,
        };
        command.Validators.Add(r =>
        {
            if ((r.GetValue(folder) is null) == (r.GetValue(manifest) is null)) r.AddError("Give either a FOLDER or --manifest FILE|URL.");
            if (r.GetValue(folder) is { Exists: false } missing) r.AddError($"The folder '{missing.ToString()}' does not exist.");
        });
        command.SetAction((result, _) => IndexCommand.RunAsync(new IndexSettings(
            result.GetValue(folder)?.FullName, result.GetValue(manifest), result.GetValue(metadata)?.FullName, result.GetValue(id) == "path" ? IdFrom.Path : IdFrom.Name,
            result.GetValue(batch), result.GetValue(shard),
            new FetchOptions(result.GetValue(downloads), result.GetValue(perHost), TimeSpan.FromSeconds(result.GetValue(connectTimeout)),
                TimeSpan.FromSeconds(result.GetValue(readTimeout)), result.GetValue(retries), MaxRedirects: 5, MaxBytes: 0),
            result.GetValue(recheck), result.GetValue(skipDuplicates))));
        return command;
    }

    private static Option<int> WholeNumber(string name, string description, int value, int min, int max) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => value,
        CustomParser = r => (int)Number(r, $"{name} takes a whole number from {min} to {max}.", v => v >= min && v <= max && v == Math.Floor(v)),
    };
}

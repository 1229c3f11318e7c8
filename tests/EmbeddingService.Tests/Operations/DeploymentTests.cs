using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmbeddingService.Tests.EndToEnd;
using EmbeddingService.Tests.Support;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace EmbeddingService.Tests.Operations;

/// <summary>
/// What can be checked of the deployment without Docker or a cluster: the manifests parse and agree with each
/// other and with the service, and the Dockerfile's command line runs the binary the tests run.
/// </summary>
[Collection(TinyModelGroup.Name)]
public sealed partial class DeploymentTests(TinyModelFixture tiny)
{
    private static readonly string Root = SharedData.RepositoryRoot;

    [Fact]
    public void The_kubernetes_manifests_parse_and_agree_with_each_other_and_the_service()
    {
        var documents = Directory.GetFiles(Path.Combine(Root, "deploy", "kubernetes"), "*.yaml")
            .Where(f => !f.EndsWith("kustomization.yaml", StringComparison.Ordinal)).SelectMany(Documents).ToList();
        var byKind = documents.ToLookup(d => Text(d, "kind"));
        var deployment = Assert.Single(byKind["Deployment"]);
        var service = Assert.Single(byKind["Service"]);
        var hpa = Assert.Single(byKind["HorizontalPodAutoscaler"]);
        var pdb = Assert.Single(byKind["PodDisruptionBudget"]);
        var secrets = byKind["Secret"].ToList();
        Assert.Equal(2, secrets.Count);

        var name = Text(deployment, "metadata", "name");
        var labels = Map(deployment, "spec", "selector", "matchLabels");
        Assert.Equal(labels, Map(deployment, "spec", "template", "metadata", "labels"));
        Assert.Equal(labels, Map(service, "spec", "selector"));
        Assert.Equal(labels, Map(pdb, "spec", "selector", "matchLabels"));
        Assert.Equal(name, Text(hpa, "spec", "scaleTargetRef", "name"));
        Assert.Equal("Deployment", Text(hpa, "spec", "scaleTargetRef", "kind"));

        var pod = Map(deployment, "spec", "template", "spec");
        var container = (Dictionary<object, object>)((List<object>)pod["containers"]).Single();
        var env = ((List<object>)container["env"]).Cast<Dictionary<object, object>>().ToDictionary(e => (string)e["name"]);
        Assert.Equal("/health/ready", Text(container, "readinessProbe", "httpGet", "path"));
        Assert.Equal("/health/ready", Text(container, "startupProbe", "httpGet", "path"));
        Assert.Equal("/health/live", Text(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("8000", Text((Dictionary<object, object>)((List<object>)container["ports"])[0], "containerPort"));

        // The key file lies in the mounted secret, which exists; the database comes from the other secret.
        var keyFile = Text(env["API_KEYS_FILE"], "value");
        var mount = ((List<object>)container["volumeMounts"]).Cast<Dictionary<object, object>>().Single(m => keyFile.StartsWith((string)m["mountPath"] + "/", StringComparison.Ordinal));
        var volume = ((List<object>)pod["volumes"]).Cast<Dictionary<object, object>>().Single(v => (string)v["name"] == (string)mount["name"]);
        var keySecret = secrets.Single(s => Text(s, "metadata", "name") == Text(volume, "secret", "secretName"));
        Assert.True(Map(keySecret, "stringData").ContainsKey(Path.GetFileName(keyFile)));
        var database = Map(env["DATABASE_URL"], "valueFrom", "secretKeyRef");
        Assert.Contains(secrets, s => Text(s, "metadata", "name") == (string)database["name"] && Map(s, "stringData").ContainsKey(database["key"]));

        // Kubernetes waits longer than the drain (plus the preStop pause) before it kills the pod.
        var shutdown = int.Parse(Text(env["SHUTDOWN_TIMEOUT_S"], "value"), CultureInfo.InvariantCulture);
        Assert.True(int.Parse(Text(pod, "terminationGracePeriodSeconds"), CultureInfo.InvariantCulture) > shutdown + 5);
        // Memory covers the measured peak (1,224 MiB, 10,000 hostile requests on fp32 with both towers).
        Assert.True(Mebibytes(Text(container, "resources", "limits", "memory")) >= 1224);
        Assert.True(Mebibytes(Text(container, "resources", "requests", "memory")) >= 900);
        foreach (var setting in env.Keys)
        {
            Assert.Contains($"`{setting}`", File.ReadAllText(Path.Combine(Root, "docs", "operations.md")), StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The ViT-L/14@336 overlay: it patches this deployment, names a repository the service reads as that model, and
    /// gives the memory the generated full-size model was measured to need (README, Model).
    /// </summary>
    [Fact]
    public void The_large_model_overlay_patches_the_deployment_with_the_models_repository_and_memory()
    {
        var overlay = Assert.Single(Documents(Path.Combine(Root, "deploy", "kubernetes", "large-model", "kustomization.yaml")));
        Assert.Equal([".."], ((List<object>)overlay["resources"]).Cast<string>());
        var deployment = Documents(Path.Combine(Root, "deploy", "kubernetes", "deployment.yaml")).Single();
        var patch = (Dictionary<object, object>)((List<object>)overlay["patches"]).Single();
        Assert.Equal(Text(deployment, "metadata", "name"), Text(patch, "target", "name"));
        var operations = new DeserializerBuilder().Build().Deserialize<List<Dictionary<object, object>>>((string)patch["patch"]);
        var repository = operations.Select(o => o["value"]).OfType<Dictionary<object, object>>().Single(v => v.TryGetValue("name", out var n) && (string)n == "MODEL_REPO");
        Assert.Equal("CLIP-ViT-L/14@336", EmbeddingService.Model.ModelCard.OpenAiName((string)repository["value"]));
        var resources = operations.Single(o => (string)o["path"] == "/spec/template/spec/containers/0/resources");
        Assert.True(Mebibytes(Text((Dictionary<object, object>)resources["value"], "limits", "memory")) >= LargeModelPeakMiB);
        Assert.True(Mebibytes(Text((Dictionary<object, object>)resources["value"], "requests", "memory")) >= LargeModelPeakMiB);
    }

    /// <summary>ViT-L/14@336 fp32 at its peak under 8 clients (scripts/bench.sh --family, README's model table).</summary>
    private const int LargeModelPeakMiB = 3082;

    /// <summary>
    /// The indexing Job: Indexed, N pods for N shards, the same database secret as the service, a failure policy that
    /// follows the command's exit codes, and arguments the command line takes (run for real, shard 0 in for Kubernetes).
    /// </summary>
    [Fact]
    public async Task The_indexing_job_runs_one_shard_per_pod_and_does_not_retry_what_cannot_succeed()
    {
        var all = Directory.GetFiles(Path.Combine(Root, "deploy", "kubernetes"), "*.yaml").SelectMany(Documents).ToList();
        var job = Assert.Single(all, d => d.TryGetValue("kind", out var kind) && (string)kind == "Job");
        var spec = Map(job, "spec");
        Assert.Equal("Indexed", Text(spec, "completionMode"));
        var shards = int.Parse(Text(spec, "completions"), CultureInfo.InvariantCulture);
        Assert.Equal(shards, int.Parse(Text(spec, "parallelism"), CultureInfo.InvariantCulture));
        Assert.DoesNotContain(Path.GetFileName(Path.Combine(Root, "deploy", "kubernetes", "index-job.yaml")),
            File.ReadAllText(Path.Combine(Root, "deploy", "kubernetes", "kustomization.yaml")), StringComparison.Ordinal);

        var pod = Map(spec, "template", "spec");
        Assert.Equal("Never", Text(pod, "restartPolicy"));
        var container = (Dictionary<object, object>)((List<object>)pod["containers"]).Single();
        var env = ((List<object>)container["env"]).Cast<Dictionary<object, object>>().ToDictionary(e => (string)e["name"]);
        var arguments = ((List<object>)container["args"]).Cast<string>().ToList();
        var shard = arguments[arguments.IndexOf("--shard") + 1];
        Assert.Equal($"$(SHARD)/{shards}", shard);
        Assert.Equal("metadata.annotations['batch.kubernetes.io/job-completion-index']", Text(env["SHARD"], "valueFrom", "fieldRef", "fieldPath"));
        var database = Map(env["DATABASE_URL"], "valueFrom", "secretKeyRef");
        Assert.Contains(all, d => (string)d["kind"] == "Secret" && Text(d, "metadata", "name") == (string)database["name"]);

        // Exit codes: 1 (items named as failed) fails the shard without retrying it, 2 and 3 fail the Job, 4 is retried.
        var rules = ((List<object>)Map(spec, "podFailurePolicy")["rules"]).Cast<Dictionary<object, object>>().ToList();
        int[] Codes(string action) => [.. rules.Where(r => (string)r["action"] == action && r.ContainsKey("onExitCodes"))
            .SelectMany(r => ((List<object>)Map(r, "onExitCodes")["values"]).Select(v => int.Parse((string)v, CultureInfo.InvariantCulture)))];
        Assert.Equal([1], Codes("FailIndex"));
        Assert.Equal([2, 3], Codes("FailJob"));
        Assert.DoesNotContain(4, Codes("FailIndex").Concat(Codes("FailJob")));
        Assert.Contains(rules, r => (string)r["action"] == "Ignore" && r.ContainsKey("onPodConditions"));
        Assert.True(int.Parse(Text(spec, "backoffLimitPerIndex"), CultureInfo.InvariantCulture) is >= 1 and <= 10);

        // The arguments parse: without DATABASE_URL the command stops at that, after the command line accepted them.
        var (exitCode, _, error) = await Processes.RunAsync("dotnet", [Processes.ServiceAssembly(), .. arguments.Select(a => a.Replace("$(SHARD)", "0", StringComparison.Ordinal))], null, ("DATABASE_URL", ""));
        Assert.True(exitCode == 2 && error.Contains("DATABASE_URL is not set", StringComparison.Ordinal), $"exit {exitCode}: {error}");
    }

    [Fact]
    public void The_compose_file_parses_checks_readiness_reads_keys_from_a_secret_and_waits_for_the_drain()
    {
        var compose = Documents(Path.Combine(Root, "docker-compose.yml")).Single();
        var embedding = Map(compose, "services", "embedding");
        Assert.Contains("http://127.0.0.1:8000/health/ready", ((List<object>)Map(embedding, "healthcheck")["test"]).Cast<string>());
        var environment = Map(embedding, "environment");
        var keyFile = (string)environment["API_KEYS_FILE"];
        var secret = Assert.Single(((List<object>)embedding["secrets"]).Cast<string>());
        Assert.Equal($"/run/secrets/{secret}", keyFile);
        Assert.True(Map(compose, "secrets").ContainsKey(secret));
        var grace = int.Parse(((string)embedding["stop_grace_period"]).TrimEnd('s'), CultureInfo.InvariantCulture);
        Assert.True(grace > int.Parse((string)environment["SHUTDOWN_TIMEOUT_S"], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task The_dockerfiles_command_line_runs_the_published_service()
    {
        var dockerfile = await File.ReadAllTextAsync(Path.Combine(Root, "Dockerfile"));
        Assert.Contains("CMD curl -fsS http://127.0.0.1:8000/health/ready", dockerfile, StringComparison.Ordinal);
        var publish = PublishLine().Match(dockerfile);
        Assert.True(publish.Success, "the build stage publishes with: RUN dotnet publish <project> -c Release -o /app");
        // The default image is the last stage (the CPU one); the GPU stage is built with --target gpu.
        var cpuStage = dockerfile[dockerfile.LastIndexOf("\nFROM ", StringComparison.Ordinal)..];
        var entrypoint = JsonSerializer.Deserialize<string[]>(EntrypointLine().Match(cpuStage).Groups[1].Value)!;
        var environment = EnvLine().Matches(cpuStage).SelectMany(m => m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(pair => pair.Split('=', 2)).ToDictionary(pair => pair[0], pair => pair[1]);

        // The build stage's command, into a directory of ours, from the very build the tests run (--no-build, in the
        // tests' configuration), so it never rebuilds under the other tests' feet.
        using var app = new TempDirectory("published");
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var (exitCode, output, error) = await Processes.RunAsync("dotnet",
            ["publish", Path.Combine(Root, publish.Groups[1].Value), "-c", configuration, "--no-build", "-o", app.Path, "--nologo", "-v", "quiet"], Root);
        Assert.True(exitCode == 0, output + error);

        var port = ServiceProcess.FreePort();
        var start = new ProcessStartInfo(entrypoint[0], entrypoint[1..]) { WorkingDirectory = app.Path, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        start.Environment["PORT"] = port.ToString(CultureInfo.InvariantCulture);
        start.Environment["MODEL_DIR"] = tiny.Directory;
        start.Environment["MODEL_AUTO_DOWNLOAD"] = "false";
        start.Environment["HOST"] = "127.0.0.1";
        using var process = Process.Start(start)!;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var ready = false;
            for (var i = 0; i < 300 && !ready && !process.HasExited; i++)
            {
                try
                {
                    ready = (await http.GetAsync(new Uri("/health/ready", UriKind.Relative))).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(100);
                }
            }

            Assert.True(ready, "the published service did not become ready");
            // The page is published beside the binary.
            Assert.Contains("<html", await http.GetStringAsync(new Uri("/ui/", UriKind.Relative)), StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    private static List<Dictionary<object, object>> Documents(string path)
    {
        var deserializer = new DeserializerBuilder().Build();
        var parser = new Parser(new StringReader(File.ReadAllText(path)));
        parser.Consume<StreamStart>();
        var documents = new List<Dictionary<object, object>>();
        while (parser.Accept<DocumentStart>(out _))
        {
            documents.Add(deserializer.Deserialize<Dictionary<object, object>>(parser));
        }

        Assert.NotEmpty(documents);
        return documents;
    }

    private static Dictionary<object, object> Map(Dictionary<object, object> node, params string[] path)
    {
        foreach (var key in path) node = (Dictionary<object, object>)node[key];
        return node;
    }

    private static string Text(Dictionary<object, object> node, params string[] path) => (string)Map(node, path[..^1])[path[^1]];

    private static int Mebibytes(string quantity) => quantity.EndsWith("Gi", StringComparison.Ordinal)
        ? int.Parse(quantity[..^2], CultureInfo.InvariantCulture) * 1024
        : int.Parse(quantity.TrimEnd('M', 'i'), CultureInfo.InvariantCulture);

    [GeneratedRegex(@"RUN dotnet publish (\S+) -c Release -o /app")]
    private static partial Regex PublishLine();

    [GeneratedRegex(@"^ENTRYPOINT (\[.*\])$", RegexOptions.Multiline)]
    private static partial Regex EntrypointLine();

    [GeneratedRegex(@"^ENV (.+)$", RegexOptions.Multiline)]
    private static partial Regex EnvLine();
}

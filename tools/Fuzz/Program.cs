using System.Globalization;
using Fuzz;

// Sends hostile requests to a started service and prints what it answered; exits 1 on any 5xx (but 503) or missing answer.
string url = "http://127.0.0.1:8000", images = Path.Combine("..", "shared", "images");
int count = 10_000, seed = 1, concurrency = 4, pid = 0;
string? route = null;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--url": url = Next(); break;
        case "--count": count = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--concurrency": concurrency = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--images": images = Next(); break;
        case "--pid": pid = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--route": route = Next(); break;
        default:
            Console.Error.WriteLine("usage: Fuzz [--url URL] [--count N] [--seed N] [--concurrency N] [--images DIR] [--pid SERVICE_PID] [--route PATH]");
            return 2;
    }
}

var target = new Uri(url);
var routes = HostileCases.Routes.Where(r => route is null || r.Path == route).ToList();
if (routes.Count == 0)
{
    Console.Error.WriteLine($"no route {route}; routes: {string.Join(", ", HostileCases.Routes.Select(r => r.Path))}");
    return 2;
}

var generator = new HostileCases(HostileCases.LoadImages(images), routes);
Console.WriteLine($"{count:N0} hostile requests (seed {seed}, {concurrency} at once) to {target}");
await using var memory = pid > 0 ? new ResidentMemory(pid) : null;
var report = await FuzzRunner.RunAsync(target.Host, target.Port, generator.Generate(seed, count), concurrency, TimeSpan.FromSeconds(90),
    done => { if (done % 1000 == 0) Console.Error.WriteLine($"  {done:N0} / {count:N0}"); });
Console.Write(report.Summary());
if (memory is not null)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RSS MiB: start {memory.Start:F0}, peak {memory.Peak:F0}, end {memory.Now():F0}"));
}

return report.ServerErrors == 0 && report.NoAnswer == 0 ? 0 : 1;

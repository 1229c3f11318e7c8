using System.Globalization;

namespace EmbeddingService.Bench;

internal sealed record BenchOptions(string? ModelDirectory, double Seconds, int SoakRequests, int IntraOpThreads, bool Focus, bool HostileOnly, bool TextOnly, bool StorageOnly, bool VariantsOnly, bool OperationsOnly, int HostileRequests, string RepositoryRoot)
{
    public bool LayoutOnly { get; init; }

    /// <summary>--indexing: the index command as one process, as shards, from a manifest of URLs.</summary>
    public bool IndexingOnly { get; init; }

    /// <summary>--family: the CLIP family's full-size presets, fp32 and int8 (<see cref="Presets"/>, or all four).</summary>
    public bool FamilyOnly { get; init; }

    /// <summary>--products: search by product, composed queries and the shopper's words at --items (products of 4 photos).</summary>
    public bool ProductsOnly { get; init; }

    /// <summary>--catalogue-checks: duplicates and tags at the store --products left.</summary>
    public bool CatalogueChecksOnly { get; init; }

    /// <summary>Only these presets (--presets vit-b32,vit-l14).</summary>
    public string[]? Presets { get; init; }

    /// <summary>Items of the store benchmarks (--items).</summary>
    public int Items { get; init; } = 1_000_000;

    public int Queries { get; init; } = 200;

    /// <summary>--items was given: --storage measures the store at that size (import, search through the standby).</summary>
    public bool ItemsGiven { get; init; }

    /// <summary>
    /// BENCH_REUSE_STORE=1: the store benchmarks (--products, --storage --items) measure the store the last run loaded (the
    /// same seed, so the same catalogue) again, without its minutes of loading and indexing.
    /// </summary>
    public static bool ReuseStore => Environment.GetEnvironmentVariable("BENCH_REUSE_STORE") == "1";

    /// <summary>Only the layouts whose names start so (--layouts vector,halfvec).</summary>
    public string[]? Layouts { get; init; }

    public string SharedDirectory => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));

    public static BenchOptions Parse(string[] args)
    {
        string? model = null;
        double seconds = 10;
        int soak = 10_000, threads = Environment.ProcessorCount;
        var focus = false;
        var hostileOnly = false;
        var textOnly = false;
        var storageOnly = false;
        var variantsOnly = false;
        var operationsOnly = false;
        var hostile = 10_000;
        bool layout = false, indexing = false, family = false, products = false, checks = false;
        string[]? presets = null;
        int items = 1_000_000, queries = 200;
        string[]? layouts = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--model": model = Next(); break;
                case "--seconds": seconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--soak": soak = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--intra-op-threads": threads = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--focus": focus = true; break;
                case "--hostile": hostileOnly = true; break;
                case "--text": textOnly = true; break;
                case "--storage": storageOnly = true; break;
                case "--variants": variantsOnly = true; break;
                case "--operations": operationsOnly = true; break;
                case "--hostile-requests": hostile = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--layout": layout = true; break;
                case "--indexing": indexing = true; break;
                case "--family": family = true; break;
                case "--products": products = true; break;
                case "--catalogue-checks": checks = true; break;
                case "--presets": presets = Next().Split(','); break;
                case "--items": items = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--queries": queries = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--layouts": layouts = Next().Split(','); break;
                default: throw new ArgumentException($"unknown argument {args[i]}; use --model DIR --seconds N --soak N --intra-op-threads N --focus --hostile --text --storage --variants --operations --hostile-requests N --layout --indexing --family --presets NAME,... --items N --queries N --layouts NAME,...");
            }
        }

        return new BenchOptions(model, seconds, soak, threads, focus, hostileOnly, textOnly, storageOnly, variantsOnly, operationsOnly, hostile, FindRoot())
        {
            LayoutOnly = layout,
            IndexingOnly = indexing,
            FamilyOnly = family,
            ProductsOnly = products,
            CatalogueChecksOnly = checks,
            Presets = presets,
            Items = items,
            Queries = queries,
            Layouts = layouts,
            ItemsGiven = args.Contains("--items"),
        };
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EmbeddingService.slnx"))) return dir.FullName;
        }

        throw new InvalidOperationException("Run from inside the repository.");
    }
}

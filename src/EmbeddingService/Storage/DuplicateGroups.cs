using EmbeddingService.Errors;

namespace EmbeddingService.Storage;

/// <summary>A stored item near another, at a cosine distance (1 - cosine similarity).</summary>
public sealed record Neighbour(string Id, double Distance);

/// <summary>An item scanned for its near neighbours; Version is the item's updated_at when it was read.</summary>
public sealed record ScannedItem(string Id, IReadOnlyList<Neighbour> Neighbours, DateTime? Version);

/// <summary>A group of duplicates: exact copies of one image, or near ones; the item suggested to keep; each item's distance to it.</summary>
public sealed record DuplicateGroup(string Group, bool Exact, IReadOnlyList<Neighbour> Items, string Keep);

/// <param name="Unscanned">Items not scanned at this distance since they last changed: run the duplicates command to include them.</param>
public sealed record DuplicatePage(IReadOnlyList<DuplicateGroup> Groups, string? Next, long Unscanned);

/// <summary>
/// Groups from what the store knows: exact sets (items sharing an image SHA-256) are groups of their own and never
/// merged with near ones; near groups are the connected components of the near pairs, each exact set standing in them
/// as its keeper. Group ids are stable on an unchanged store: "exact:" and the SHA-256, or "near:" and the group's
/// first id (ordinal); groups come in that order.
/// </summary>
public static class DuplicateGroups
{
    public static List<DuplicateGroup> Build(IReadOnlyList<(string Sha, List<string> Ids)> exactSets, IReadOnlyList<(string A, string B)> pairs,
        IReadOnlyDictionary<string, (long Pixels, DateTime Created)> facts)
    {
        ArgumentNullException.ThrowIfNull(exactSets);
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(facts);
        var groups = new List<DuplicateGroup>();
        var standIn = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (sha, ids) in exactSets)
        {
            var keep = Keeper(ids, facts);
            foreach (var id in ids) standIn[id] = keep;
            groups.Add(new DuplicateGroup($"exact:{sha}", true, [.. ids.Select(id => new Neighbour(id, 0))], keep));
        }

        var parent = new Dictionary<string, string>(StringComparer.Ordinal);
        string Find(string x)
        {
            var root = x;
            while (parent[root] != root) root = parent[root];
            while (parent[x] != root) (parent[x], x) = (root, parent[x]);
            return root;
        }

        foreach (var (a, b) in pairs)
        {
            var (x, y) = (standIn.GetValueOrDefault(a, a), standIn.GetValueOrDefault(b, b));
            if (x == y) continue;
            parent.TryAdd(x, x);
            parent.TryAdd(y, y);
            var (rx, ry) = (Find(x), Find(y));
            if (rx != ry) parent[ry] = rx;
        }

        foreach (var component in parent.Keys.GroupBy(Find, StringComparer.Ordinal))
        {
            var ids = component.Order(StringComparer.Ordinal).ToList();
            if (ids.Count < 2) continue;
            groups.Add(new DuplicateGroup($"near:{ids[0]}", false, [.. ids.Select(id => new Neighbour(id, 0))], Keeper(ids, facts)));
        }

        groups.Sort((x, y) => string.CompareOrdinal(x.Group, y.Group));
        return groups;
    }

    /// <summary>The largest image, then the oldest item, then the first id.</summary>
    public static string Keeper(IEnumerable<string> ids, IReadOnlyDictionary<string, (long Pixels, DateTime Created)> facts) =>
        ids.OrderByDescending(id => facts.TryGetValue(id, out var f) ? f.Pixels : 0)
            .ThenBy(id => facts.TryGetValue(id, out var f) ? f.Created : DateTime.MaxValue)
            .ThenBy(id => id, StringComparer.Ordinal)
            .First();
}

/// <summary>A resolve names items to keep that do not exist (422): nothing is deleted.</summary>
public sealed class KeepMissingException : ApiException
{
    public KeepMissingException()
        : this([])
    {
    }

    public KeepMissingException(IReadOnlyList<string> missing)
        : base(ApiError.Invalid($"\"keep\" names items that do not exist: {string.Join(", ", missing.Take(10).Select(m => $"'{m}'"))}; nothing was deleted.", "keep"))
    {
    }

    public KeepMissingException(string message, Exception innerException)
        : base(ApiError.Invalid(message, "keep"), innerException)
    {
    }
}

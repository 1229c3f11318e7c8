namespace EmbeddingService.Storage;

/// <summary>
/// The store's layout since schema version 2, chosen by measurement at 1,000,000 vectors (docs/decisions.md, "A store
/// for ten million products"): embeddings as <c>halfvec</c> (half the bytes of <c>vector</c>; 1 - cos changes by
/// ~1e-4, below the int8 variant's error), searched through an HNSW index of their binary codes
/// (<c>binary_quantize</c>, 64 bytes a vector) whose candidates are re-ranked exactly; thumbnails in a table of their
/// own, so that a search never reads them.
/// </summary>
internal static class StoreLayout
{
    /// <summary>Schema version 1 held ViT-B/32's vectors only: a store of that version is of this dimension.</summary>
    public const int Version1Dimension = Model.ModelCard.DefaultDimension;

    /// <summary>The order of the binary index: Hamming distance between the codes.</summary>
    public static string BinaryOrder(int dimension) =>
        $"binary_quantize(embedding)::bit({dimension}) <~> binary_quantize(@query::halfvec({dimension}))::bit({dimension})";

    /// <summary>The exact order: cosine distance on the stored half-precision vectors.</summary>
    public static string ExactOrder(int dimension) => $"embedding <=> @query::halfvec({dimension})";

    /// <summary>The items table (without its thumbnails) as schema version 2 creates it, for vectors of the model's dimension.</summary>
    public static string ItemsTable(string name, int dimension) => $$"""
        CREATE TABLE {{name}} (
            id text PRIMARY KEY,
            embedding halfvec({{dimension}}) NOT NULL,
            model text NOT NULL,
            variant text NOT NULL,
            image_sha256 text,
            metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            product text,
            text text,
            image_pixels bigint)
        """;

    public const string ThumbnailsTable = """
        CREATE TABLE IF NOT EXISTS item_thumbnails (
            id text PRIMARY KEY,
            bytes bytea NOT NULL,
            content_type text NOT NULL)
        """;

    public const string ThumbnailsForeignKey = "ALTER TABLE item_thumbnails ADD CONSTRAINT item_thumbnails_id_fkey FOREIGN KEY (id) REFERENCES items (id) ON DELETE CASCADE";

    /// <summary>The metadata index (containment, <c>@&gt;</c>).</summary>
    public static string MetadataIndex(string table, string name, bool concurrently) =>
        $"CREATE INDEX {(concurrently ? "CONCURRENTLY " : string.Empty)}IF NOT EXISTS {name} ON {table} USING gin (metadata jsonb_path_ops)";

    /// <summary>
    /// The text search configuration of the items' <c>text</c>: <c>simple</c> lower-cases and neither stems nor drops
    /// stop words, so brands, SKUs and model numbers stay as written ("AJ1-555088" is the words 'aj1' and '-555088',
    /// which a query for it asks for as a phrase: docs/decisions.md, "The shopper's words").
    /// </summary>
    public const string TextSearchConfig = "simple";

    /// <summary>The items' text as a tsvector: the expression the text index holds (no column of its own: see docs/decisions.md).</summary>
    public const string TextVector = "to_tsvector('" + TextSearchConfig + "'::regconfig, text)";

    /// <summary>A client's words as a query: web-search syntax ("quoted phrases", or, -not), every other word required.</summary>
    public const string TextQuery = "websearch_to_tsquery('" + TextSearchConfig + "'::regconfig, @words)";

    /// <summary>The products index: a grouped search reads the product beside each candidate, an item's product finds its siblings.</summary>
    public static string ProductIndex(string table, string name, bool concurrently) =>
        $"CREATE INDEX {(concurrently ? "CONCURRENTLY " : string.Empty)}IF NOT EXISTS {name} ON {table} (product) WHERE product IS NOT NULL";

    /// <summary>The full-text index over the items' text (GIN of <see cref="TextVector"/>, only the items that have a text).</summary>
    public static string TextIndex(string table, string name, bool concurrently) =>
        $"CREATE INDEX {(concurrently ? "CONCURRENTLY " : string.Empty)}IF NOT EXISTS {name} ON {table} USING gin ({TextVector}) WHERE text IS NOT NULL";

    /// <summary>Version 3 on a store of version 2: the columns (no rewrite: nullable, no default) and their indexes.</summary>
    public static string ProductAndTextColumns(string table) =>
        $"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS product text, ADD COLUMN IF NOT EXISTS text text, ADD COLUMN IF NOT EXISTS image_pixels bigint";

    /// <summary>Exact copies are found by their image's SHA-256 (only items embedded from an image have one).</summary>
    public static string ImageHashIndex(string table, string name, bool concurrently) =>
        $"CREATE INDEX {(concurrently ? "CONCURRENTLY " : string.Empty)}IF NOT EXISTS {name} ON {table} (image_sha256) WHERE image_sha256 IS NOT NULL";

    /// <summary>
    /// What the catalogue knows of its duplicates, from the stored vectors: pairs of items within the distance they
    /// were scanned at (a &lt; b, gone with either item), and which items were scanned, at which radius and at which
    /// version of the item (its updated_at then: a changed vector is scanned again).
    /// </summary>
    public const string DuplicateTables = """
        CREATE TABLE IF NOT EXISTS item_pairs (
            a text NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            b text NOT NULL REFERENCES items (id) ON DELETE CASCADE,
            distance real NOT NULL,
            PRIMARY KEY (a, b),
            CHECK (a < b));
        CREATE INDEX IF NOT EXISTS item_pairs_b ON item_pairs (b);
        CREATE TABLE IF NOT EXISTS duplicate_scans (
            id text PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
            item_version timestamptz NOT NULL,
            radius real NOT NULL)
        """;

    /// <summary>The vector index: HNSW over the binary codes.</summary>
    public static string VectorIndex(string table, string name, StorageOptions options, int dimension, bool concurrently) =>
        $"CREATE INDEX {(concurrently ? "CONCURRENTLY " : string.Empty)}IF NOT EXISTS {name} ON {table} " +
        $"USING hnsw ((binary_quantize(embedding)::bit({dimension})) bit_hamming_ops) WITH (m = {options.HnswM}, ef_construction = {options.HnswEfConstruction})";

    /// <summary>
    /// Session settings for building an index: MAINTENANCE_WORK_MEM, and parallel workers only where pgvector is past
    /// CVE-2026-3172 (a buffer overflow in parallel HNSW builds, 0.6.0 to 0.8.1): on older versions a build runs on one
    /// worker, which is the only way the flaw cannot be reached whatever the server's own settings.
    /// </summary>
    /// <param name="local">Only for the transaction (SET LOCAL), where the build runs inside one.</param>
    public static string BuildSettings(StorageOptions options, string pgvectorVersion, bool local) =>
        $"SET {(local ? "LOCAL " : string.Empty)}maintenance_work_mem = '{options.MaintenanceWorkMemMb}MB'; " +
        $"SET {(local ? "LOCAL " : string.Empty)}max_parallel_maintenance_workers = {(ParallelBuildsAreSafe(pgvectorVersion) ? options.IndexBuildWorkers : 0)}";

    public static bool ParallelBuildsAreSafe(string pgvectorVersion) =>
        System.Version.TryParse(pgvectorVersion, out var version) && version >= new System.Version(0, 8, 2);
}

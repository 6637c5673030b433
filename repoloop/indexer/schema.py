"""Everything index.db holds, declared in one place: every table and index, the schema version and
the keys of the `meta` table.

The store creates the whole schema when it makes an index (and `IndexStore.ensure_indexes` puts back
whatever is missing); the graph and embedding phases, which may meet an index written before their
tables existed, run their own part (`GRAPH_SCHEMA`, `EMBED_KEYS_SCHEMA`) before writing. Readers
(`repoloop.retrieval`) create nothing.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# -- keys of the `meta` table ----------------------------------------------------------------------
SCHEMA_VERSION_KEY = "schema_version"
LAST_RUN_KEY = "last_run"  # JSON of the last index run's report
PARSER_FINGERPRINT_KEY = "parser_fingerprint"  # `pipeline.parser_fingerprint()` of the code that parsed the files
MAX_FILE_SIZE_KEY = "max_file_size"  # the walk's size limit the stored files were chosen with
GENERATION_KEY = "graph_generation"  # bumped by every update that changed the ranking graph's edges
JS_PACKAGES_KEY = "graph_js_packages"  # the workspace packages and tsconfig paths the JS edges used
CODE_KEY = "graph_code"  # `graph.build.code_fingerprint()` of the code that built the edges
META_MODEL = "embed_model"  # the embedder's name
META_DIM = "embed_dim"
META_TAG = "chroma_tag"  # this index's vector collection tag
META_URL = "chroma_url"  # the Chroma server the vectors live on ("": embedded)
META_SCOPE = "embed_scope"  # "code" (non-test chunks) or "all"; absent on older indexes: "all"

# -- tables ----------------------------------------------------------------------------------------
# rowid = files.id: the whole file's tokens (every chunk's names + body), for file-level BM25.
FILES_FTS_SCHEMA = """\
CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(path, body, tokenize='unicode61');
"""

# Graph edges' indexes, by name: dropped while a full graph build inserts (one sort at the end).
EDGE_INDEXES: dict[str, str] = {
    "edges_src": "CREATE INDEX IF NOT EXISTS edges_src ON edges(src);",
    "edges_dst": "CREATE INDEX IF NOT EXISTS edges_dst ON edges(dst);",
    "edges_file": "CREATE INDEX IF NOT EXISTS edges_file ON edges(file_id);",
}

CORE_SCHEMA = """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    language TEXT NOT NULL,
    module TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    mtime REAL NOT NULL DEFAULT 0,
    lines INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'ok',       -- ok | partial (syntax errors) | text (no grammar)
    syntax_errors INTEGER NOT NULL DEFAULT 0,
    decode_errors INTEGER NOT NULL DEFAULT 0,  -- 1: not valid UTF-8, indexed with replacement chars
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS skips (path TEXT PRIMARY KEY, reason TEXT NOT NULL);
-- Files whose rows changed (op 'changed') or went (op 'deleted') since the graph was last built:
-- written in the same transaction as the rows, cleared after the graph phase, so a run killed
-- between the two phases still rebuilds those edges next time.
CREATE TABLE IF NOT EXISTS pending (path TEXT PRIMARY KEY, op TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS symbols (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    qualname TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL DEFAULT '',
    doc TEXT NOT NULL DEFAULT '',
    parent TEXT
);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_qualname ON symbols(qualname);
CREATE INDEX IF NOT EXISTS symbols_file ON symbols(file_id);
CREATE TABLE IF NOT EXISTS refs (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    line INTEGER NOT NULL,
    scope TEXT,
    full TEXT NOT NULL DEFAULT '',
    module TEXT,
    alias TEXT
);
CREATE INDEX IF NOT EXISTS refs_name ON refs(name);
CREATE INDEX IF NOT EXISTS refs_file ON refs(file_id);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    symbol TEXT,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    header TEXT NOT NULL DEFAULT '',
    hash TEXT NOT NULL                      -- sha1 of header + text: the embedding cache key
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);
-- rowid = chunks.id. Columns hold code tokens (identifiers whole + split into words).
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(path, names, body, tokenize='unicode61');
-- rowid = files.id: the whole file's tokens (every chunk's names + body), for file-level BM25.
""" + FILES_FTS_SCHEMA + """-- Graph edges (issue: dependency graph). src/dst are node keys: 'f:<path>' or 's:<qualname>'.
CREATE TABLE IF NOT EXISTS edges (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,  -- the file whose refs made it
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    kind TEXT NOT NULL,                      -- contains | imports | calls | references | inherits
    weight REAL NOT NULL DEFAULT 1.0,
    line INTEGER
);
""" + "\n".join(EDGE_INDEXES.values()) + "\n"

# Secondary indexes dropped while bulk-loading an empty index (see IndexStore.drop_bulk_indexes).
BULK_INDEXES = ("symbols_name", "symbols_qualname", "symbols_file", "refs_name", "refs_file", "chunks_file",
                "chunks_hash")

# What the graph phase keeps beside the edges, to redo only the files whose resolution changed.
GRAPH_SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_files (
    path TEXT PRIMARY KEY,
    hash TEXT NOT NULL,   -- files.hash when this file's edges were built
    iface TEXT NOT NULL   -- JSON: defs, imports, bases (what other files' resolution depends on)
);
CREATE TABLE IF NOT EXISTS graph_edge_sums (
    path TEXT PRIMARY KEY,
    digest TEXT NOT NULL  -- `edges_digest` of this file's edges when they were last built
);
"""

# The embedding phase's chunk -> vector id map.
EMBED_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS embed_keys (
    chunk_id INTEGER PRIMARY KEY,      -- chunks.id
    chunk_hash TEXT NOT NULL,          -- chunks.hash when the key was computed (guards reused ids)
    key TEXT NOT NULL                  -- sha1 of the embedded text: the vector's id
);
CREATE INDEX IF NOT EXISTS embed_keys_key ON embed_keys(key);
"""

# The global PageRank of the graph, keyed by GENERATION_KEY: one JSON row, read back ~10x faster
# than a row per node. Filled by a reader that computed it (`repoloop.retrieval.graph`) where it may
# write; an optimisation only.
RANK_CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_rank_cache (generation INTEGER PRIMARY KEY, ranks TEXT NOT NULL);
"""

SCHEMA = CORE_SCHEMA + GRAPH_SCHEMA + EMBED_KEYS_SCHEMA + RANK_CACHE_SCHEMA

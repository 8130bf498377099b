-- Repositories, files, chunks, lexical postings, skipped files and index runs.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE repositories (
    id              serial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    root            text NOT NULL,
    generation      bigint NOT NULL DEFAULT 0,      -- bumped by every committed change
    chunk_count     bigint NOT NULL DEFAULT 0,      -- BM25 N
    total_length    bigint NOT NULL DEFAULT 0,      -- BM25 sum of document lengths
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE files (
    id              bigserial PRIMARY KEY,
    repo_id         integer NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    path            text NOT NULL,
    language        text NOT NULL,
    size            bigint NOT NULL,
    mtime_ns        bigint NOT NULL,
    content_hash    text NOT NULL,
    fallback        text,                           -- why line windows were used, if they were
    indexed_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repo_id, path)
);

-- A chunk's id is (file_id << 20) | ordinal, so worker processes can format rows before they are stored,
-- and a file's chunks are one primary-key range. The unit of work deletes them with their file.
CREATE TABLE chunks (
    id              bigint PRIMARY KEY,
    file_id         bigint NOT NULL,
    repo_id         integer NOT NULL,
    path            text NOT NULL,
    language        text NOT NULL,
    kind            text NOT NULL,
    name            text,
    name_path       text,
    start_line      integer NOT NULL,
    end_line        integer NOT NULL,
    start_byte      integer NOT NULL,
    end_byte        integer NOT NULL,
    signature       text,
    docstring       text,
    content         text NOT NULL,
    content_hash    text NOT NULL,
    length          integer NOT NULL                -- BM25 document length (weighted)
);
-- Stored uncompressed: pglz costs more CPU at index time than the disk it saves is worth.
ALTER TABLE chunks ALTER COLUMN content SET STORAGE EXTERNAL;
CREATE INDEX chunks_name_idx ON chunks (lower(name));

-- The inverted index: one row per (term, file) holding, for the file's chunks that contain the term, packed
-- little-endian arrays of chunk ids (int64), weighted term frequencies (int32; name matches count more) and
-- the chunks' BM25 lengths (int32). Search fetches a term's rows concatenated and scores them vectorised.
-- Grouping by file makes a third as many rows as one per (term, chunk). No foreign keys: per-row RI checks
-- would dominate bulk COPY; the unit of work deletes by file_id.
-- One partition per repository (created with the repository, see repositories.py): a first index loads its
-- partition without indexes and builds them once at the end, and removing a repository drops its partition.
CREATE TABLE postings (
    term            text NOT NULL,
    repo_id         integer NOT NULL,
    file_id         bigint NOT NULL,
    chunk_ids       bytea NOT NULL,
    tfs             bytea NOT NULL,
    lengths         bytea NOT NULL
) PARTITION BY LIST (repo_id);
-- Stored uncompressed: the arrays are small and compressing them costs CPU on every search.
ALTER TABLE postings ALTER COLUMN chunk_ids SET STORAGE EXTERNAL;
ALTER TABLE postings ALTER COLUMN tfs SET STORAGE EXTERNAL;
ALTER TABLE postings ALTER COLUMN lengths SET STORAGE EXTERNAL;

CREATE TABLE skipped_files (
    repo_id         integer NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    path            text NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL DEFAULT '',
    size            bigint,                         -- set when the file was read: unchanged, it is not re-read
    mtime_ns        bigint,
    PRIMARY KEY (repo_id, path)
);

CREATE TABLE index_runs (
    id              bigserial PRIMARY KEY,
    repo_id         integer NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    status          text NOT NULL,                  -- running | done | aborted | failed
    pid             integer NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    files_indexed   integer NOT NULL DEFAULT 0,
    files_deleted   integer NOT NULL DEFAULT 0,
    error           text
);
CREATE INDEX index_runs_repo_idx ON index_runs (repo_id, id DESC);

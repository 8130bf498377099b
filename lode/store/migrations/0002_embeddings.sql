-- Embedding models and per-repository serving state. Vectors live in one table per model (vectors_m<id>),
-- created by lode/store/vectors.py when a model is first used, because pgvector columns have a fixed dimension.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE embedding_models (
    id              serial PRIMARY KEY,
    model_id        text NOT NULL UNIQUE,           -- the provider's stable id, e.g. all-MiniLM-L6-v2@onnx-int8
    dimension       integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The model whose vectors serve a repository's searches, and the one being filled during a switch.
ALTER TABLE repositories ADD COLUMN embedding_model integer REFERENCES embedding_models(id);
ALTER TABLE repositories ADD COLUMN next_embedding_model integer REFERENCES embedding_models(id);

-- Chunks a model could not embed (e.g. the provider rejected the input), so the backfill does not retry them.
CREATE TABLE embedding_failures (
    model           integer NOT NULL REFERENCES embedding_models(id) ON DELETE CASCADE,
    chunk_id        bigint NOT NULL,
    repo_id         integer NOT NULL,
    error           text NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, chunk_id)
);
CREATE INDEX embedding_failures_repo_idx ON embedding_failures (repo_id, model);

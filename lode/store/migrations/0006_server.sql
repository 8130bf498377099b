-- The REST server: index jobs (shared by every replica) and hashed API keys.

CREATE TABLE jobs (
    id                  uuid PRIMARY KEY,
    repo                text NOT NULL,
    path                text NOT NULL,
    state               text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    phase               text,                           -- indexing | embedding while running
    files_total         integer NOT NULL DEFAULT 0,
    files_done          integer NOT NULL DEFAULT 0,
    chunks              bigint NOT NULL DEFAULT 0,
    embeddings_done     bigint NOT NULL DEFAULT 0,
    embeddings_pending  bigint NOT NULL DEFAULT 0,
    embeddings_failed   bigint NOT NULL DEFAULT 0,
    eta_seconds         double precision,
    error               text,
    report              jsonb,                          -- the index report, as `lode index --json` prints it
    cancel_requested    boolean NOT NULL DEFAULT false, -- set by DELETE on any replica; the runner polls it
    owner               text NOT NULL,                  -- host:pid of the server process running the job
    heartbeat_at        timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz
);
-- One queued or running job per repository, across replicas.
CREATE UNIQUE INDEX jobs_one_active_per_repo ON jobs (repo) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_created_idx ON jobs (created_at DESC);

CREATE TABLE api_keys (
    name        text PRIMARY KEY,
    key_hash    bytea NOT NULL UNIQUE,                  -- sha256 of the key; the key itself is never stored
    repos       text[],                                 -- the repositories it may use; NULL: all
    created_at  timestamptz NOT NULL DEFAULT now()
);

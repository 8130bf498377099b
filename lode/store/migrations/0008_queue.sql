-- The durable job queue (lode/queue.py): index jobs are dispatched, leased and retried by procrastinate, whose
-- own schema lode/store/db.py applies right after the numbered migrations. `jobs` stays the user-visible record.
ALTER TABLE jobs ADD COLUMN queue_job_id bigint;          -- the procrastinate job that runs this index job
ALTER TABLE jobs ADD COLUMN attempts integer NOT NULL DEFAULT 0;  -- runs started (a retry after a worker died: 2)
COMMENT ON COLUMN jobs.owner IS 'who submitted the job, then the worker (host:pid) running it';

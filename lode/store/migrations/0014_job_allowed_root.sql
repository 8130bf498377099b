-- The entry of LODE_ALLOWED_ROOTS that admitted an index job (NULL: the open local mode, or a job from before
-- this version). The worker confines the run to it (lode/jobs.py): a directory on the way that became a
-- symlink out of it between the request and the run fails the job instead of being followed.
ALTER TABLE jobs ADD COLUMN allowed_root text;

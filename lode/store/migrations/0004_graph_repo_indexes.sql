-- Per-repository lookups in resolution: a repository's first load has no dependencies or edges to go stale,
-- and the planner needs these to see that instead of scanning the GIN index across every repository.
CREATE INDEX graph_dependencies_repo_idx ON graph_dependencies (repo_id);

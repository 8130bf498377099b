-- One partition of graph_edges per repository (issue #4), like postings. A repository's first resolution copies
-- its edges into a new table without indexes and attaches it, which builds its indexes once, sorted: less than
-- half the cost of inserting every edge into indexes shared by all repositories. GraphStore names the
-- partitions graph_edges_r<repo id> and creates them; removing a repository drops its partition.

ALTER TABLE graph_edges RENAME TO graph_edges_shared;
ALTER INDEX graph_edges_source_idx RENAME TO graph_edges_shared_source_idx;
ALTER INDEX graph_edges_target_idx RENAME TO graph_edges_shared_target_idx;
ALTER INDEX graph_edges_external_idx RENAME TO graph_edges_shared_external_idx;

CREATE TABLE graph_edges (LIKE graph_edges_shared) PARTITION BY LIST (repo_id);
CREATE INDEX graph_edges_source_idx ON graph_edges (source_id);
CREATE INDEX graph_edges_target_idx ON graph_edges (target_id);
CREATE INDEX graph_edges_external_idx ON graph_edges (repo_id, target_name) WHERE target_id IS NULL;

DO $$
DECLARE
    repo integer;
BEGIN
    FOR repo IN SELECT DISTINCT repo_id FROM graph_edges_shared LOOP
        EXECUTE format('CREATE TABLE graph_edges_r%s PARTITION OF graph_edges FOR VALUES IN (%s)', repo, repo);
    END LOOP;
END $$;
INSERT INTO graph_edges SELECT * FROM graph_edges_shared;
DROP TABLE graph_edges_shared;
ANALYZE graph_edges;

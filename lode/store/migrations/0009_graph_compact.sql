-- A cheaper graph build (issue #4). Resolution reads a file's references and bindings whole, never one row at a
-- time, so they move into the file's graph_files row as JSON: a file's graph is one row plus its nodes, instead of
-- one row (and index entries) per reference and binding. Dependencies and the work queue become per file: a file
-- is re-resolved whole when a name it looked up changes, and its looked-up names are stored once, not once per
-- definition in it.

ALTER TABLE graph_files
    ADD COLUMN bindings json NOT NULL DEFAULT '[]',   -- [[scope ordinal, scope name path, name, target, kind], ...]
    ADD COLUMN bases json NOT NULL DEFAULT '[]',      -- [[type ordinal, base expression], ...] in declaration order
    ADD COLUMN refs json NOT NULL DEFAULT '[]';       -- [[source ordinal, kind, name, line, hint], ...]

UPDATE graph_files g SET refs = r.refs, bases = coalesce(r.bases, '[]')
  FROM (SELECT id >> 20 AS file_id,
               json_agg(json_build_array(source_id & 1048575, kind, name, line, hint) ORDER BY id) AS refs,
               json_agg(json_build_array(source_id & 1048575, name) ORDER BY id)
                   FILTER (WHERE kind = 'inherits') AS bases
          FROM graph_references GROUP BY 1) r
 WHERE r.file_id = g.file_id;
UPDATE graph_files g SET bindings = b.bindings
  FROM (SELECT file_id, json_agg(json_build_array(scope_id & 1048575, scope, name, target, kind)) AS bindings
          FROM graph_bindings GROUP BY 1) b
 WHERE b.file_id = g.file_id;
DROP TABLE graph_references, graph_bindings;

-- The hashed names a file's resolution looked up, found or not.
CREATE TABLE graph_file_dependencies (
    file_id         bigint PRIMARY KEY,
    repo_id         integer NOT NULL,
    keys            bigint[] NOT NULL
);
INSERT INTO graph_file_dependencies (file_id, repo_id, keys)
SELECT d.source_id >> 20, min(d.repo_id), array_agg(DISTINCT k ORDER BY k)
  FROM graph_dependencies d CROSS JOIN LATERAL unnest(d.keys) k GROUP BY 1;
DROP TABLE graph_dependencies;
CREATE INDEX graph_file_dependencies_keys_idx ON graph_file_dependencies USING gin (keys);
CREATE INDEX graph_file_dependencies_repo_idx ON graph_file_dependencies (repo_id);

-- The queue: one row per stored or removed file, with the names it defined or bound. Names queued before this
-- migration carry no file: their repositories are resolved again whole.
ALTER TABLE graph_dirty_files ADD COLUMN keys bigint[] NOT NULL DEFAULT '{}';
DELETE FROM graph_edges WHERE repo_id IN (SELECT repo_id FROM graph_dirty_names);
DELETE FROM graph_file_dependencies WHERE repo_id IN (SELECT repo_id FROM graph_dirty_names);
INSERT INTO graph_dirty_files (repo_id, file_id)
SELECT repo_id, file_id FROM graph_files WHERE repo_id IN (SELECT repo_id FROM graph_dirty_names);
DROP TABLE graph_dirty_names;

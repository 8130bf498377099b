-- Cheaper per-file graph rows (issue #4).
-- A file's facts are JSON that only Lode writes and reads: stored as text, they skip the server's JSON
-- validation on every insert. Queries that need JSON cast them (refs::json).
ALTER TABLE graph_files
    ALTER COLUMN bindings DROP DEFAULT, ALTER COLUMN bindings TYPE text,
    ALTER COLUMN bases DROP DEFAULT, ALTER COLUMN bases TYPE text,
    ALTER COLUMN refs DROP DEFAULT, ALTER COLUMN refs TYPE text;
-- Symbol lookups (graph/queries.py find_symbol) filter on the short name, which graph_nodes_name_idx serves even
-- for a qualified name (its last part); the name_path index was never chosen, and every node paid for it.
DROP INDEX graph_nodes_name_path_idx;

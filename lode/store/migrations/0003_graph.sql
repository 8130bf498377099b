-- The code graph (lode/graph): nodes, raw references, resolved edges, and the work queue that keeps edges exact
-- across incremental changes. Like chunks, a file's rows are id ranges: node and reference ids are
-- (file_id << 20) | ordinal, and a module node is (file_id << 20) | 0xFFFFF. No foreign keys: rows are bulk
-- copied, and GraphStore deletes them with their file.

CREATE TABLE graph_files (
    file_id         bigint PRIMARY KEY,
    repo_id         integer NOT NULL,
    path            text NOT NULL,
    language        text NOT NULL,
    module          text NOT NULL,
    namespace       text NOT NULL                   -- prefix of the file's name paths: module, Go/Java package
);
CREATE INDEX graph_files_repo_idx ON graph_files (repo_id);

CREATE TABLE graph_nodes (
    id              bigint PRIMARY KEY,             -- the id of the definition's first chunk
    repo_id         integer NOT NULL,
    file_id         bigint NOT NULL,
    kind            text NOT NULL,                  -- function | method | class | ... | module
    name            text NOT NULL,
    name_path       text NOT NULL,
    path            text NOT NULL,
    start_line      integer NOT NULL,
    end_line        integer NOT NULL
);
CREATE INDEX graph_nodes_name_path_idx ON graph_nodes (repo_id, name_path);
CREATE INDEX graph_nodes_name_idx ON graph_nodes (repo_id, name);

-- Names bound in a scope (module, type or function) by imports and typed assignments.
CREATE TABLE graph_bindings (
    repo_id         integer NOT NULL,
    file_id         bigint NOT NULL,
    scope_id        bigint NOT NULL,
    scope           text NOT NULL,                  -- the scope node's name path
    name            text NOT NULL,                  -- '*' for a star import
    target          text NOT NULL,
    kind            text NOT NULL                   -- import | star | instance | external | package
);
CREATE INDEX graph_bindings_repo_idx ON graph_bindings (repo_id);
CREATE INDEX graph_bindings_file_idx ON graph_bindings (file_id);

CREATE TABLE graph_references (
    id              bigint PRIMARY KEY,
    repo_id         integer NOT NULL,
    source_id       bigint NOT NULL,
    kind            text NOT NULL,                  -- calls | imports | inherits
    name            text NOT NULL,                  -- as written, or the absolute import target
    line            integer NOT NULL,
    hint            text                            -- what is known of a call's receiver; see graph/facts.py
);
CREATE INDEX graph_references_inherits_idx ON graph_references (repo_id) WHERE kind = 'inherits';

-- One row per reference and target; a source node's edges are replaced together when it is resolved again.
CREATE TABLE graph_edges (
    repo_id         integer NOT NULL,
    source_id       bigint NOT NULL,
    target_id       bigint,                         -- NULL: the external node named target_name
    target_name     text,
    kind            text NOT NULL,
    confidence      real NOT NULL,
    line            integer NOT NULL                -- evidence: the source file's line
);
CREATE INDEX graph_edges_source_idx ON graph_edges (source_id);
CREATE INDEX graph_edges_target_idx ON graph_edges (target_id);
CREATE INDEX graph_edges_external_idx ON graph_edges (repo_id, target_name) WHERE target_id IS NULL;

-- The hashed names the resolution of a source node's references looked up, found or not: when a file defining
-- or binding one of them changes, the source's references are resolved again. Kept per source node rather than
-- per reference: a sixth of the rows and less than half the index entries.
CREATE TABLE graph_dependencies (
    source_id       bigint PRIMARY KEY,
    repo_id         integer NOT NULL,
    keys            bigint[] NOT NULL
);
CREATE INDEX graph_dependencies_keys_idx ON graph_dependencies USING gin (keys);

-- Work for the next GraphStore.resolve, written in the same transaction as the file change that causes it.
CREATE TABLE graph_dirty_names (
    repo_id         integer NOT NULL,
    key             bigint NOT NULL
);
CREATE TABLE graph_dirty_files (
    repo_id         integer NOT NULL,
    file_id         bigint NOT NULL                 -- stored (its references) or removed (edges into it)
);

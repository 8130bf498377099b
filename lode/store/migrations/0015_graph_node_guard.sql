-- Definitions under a module- or class-level if/try/with are nodes too (issue #18); the guard says what decides
-- whether one exists (`platform: sys.platform == "win32"`, `fallback import: except ImportError`). NULL: none.
ALTER TABLE graph_nodes ADD COLUMN guard text;

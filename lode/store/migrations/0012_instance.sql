-- This database's identity: a random id made when the database is created (or first upgraded to this version).
-- Keys of the shared Redis cache carry it (lode/cache.py), so two databases behind one Redis never read each
-- other's entries, even for repositories with the same name, id and generation; a re-created LODE_HOME gets a
-- new one. A single row.
CREATE TABLE instance (
    id     uuid NOT NULL DEFAULT gen_random_uuid(),
    single boolean PRIMARY KEY DEFAULT true CHECK (single)
);
INSERT INTO instance DEFAULT VALUES;

-- Pruned lexical search (issue 20): each term's document frequency per repository, so a search knows every
-- query term's idf, and so its BM25 upper bound, before reading any posting. Kept in the same transaction as
-- the postings of each file (an incremental write adds the file's terms, a delete subtracts them), rebuilt
-- from the postings when a first load finishes. A term whose df fell to 0 is ignored by searches.
CREATE TABLE term_stats (
    repo_id         integer NOT NULL,
    term            text NOT NULL,
    df              bigint NOT NULL,                -- chunks of the repository holding the term
    PRIMARY KEY (repo_id, term)
);
-- False while a first load runs (its per-file writes skip term_stats) and for repositories indexed before this
-- version: searches score exhaustively until the next run's maintenance rebuilds the table and sets it.
ALTER TABLE repositories ADD COLUMN term_stats_ready boolean NOT NULL DEFAULT false;
-- Postings are looked up by (term, file): a pruned search reads a common term's rows only for the files of
-- the chunks that can still reach the top k. Existing partitions get the wider index at their next rebuild;
-- until then searches score exhaustively.

-- Query embeddings, the cache's L3 for the "vector" kind (lode/cache.py): a repeated query in a fresh process
-- needs neither Redis nor the embedding model. Kept to about LODE_CACHE_L3_VECTORS rows; `lode cache flush`
-- (without --repo) empties it.
CREATE TABLE query_vectors (
    model_id   text NOT NULL,   -- the provider's model id, e.g. http:stub-a
    query_hash bytea NOT NULL,  -- blake2b (16 bytes) of the query text
    vector     bytea NOT NULL,  -- float32, little-endian
    PRIMARY KEY (model_id, query_hash)
);

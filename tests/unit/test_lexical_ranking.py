"""The lexical ranking's numpy steps against the plain definition: per-chunk sums, then every chunk sorted by
score (descending) and chunk id (ascending), cut at the limit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lode.search.lexical import accumulate, best


def reference(ids: list[int], scores: list[float], limit: int) -> list[tuple[int, float]]:
    sums: dict[int, float] = {}
    for chunk, score in zip(ids, scores):
        sums[chunk] = sums.get(chunk, 0.0) + score
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


postings = st.lists(st.tuples(st.one_of(st.integers(0, 60), st.integers(0, 2**40)),  # dense ids, or far apart
                              st.sampled_from([0.5, 1.0, 1.25, 2.0, 3.5])),  # few values: many ties
                    min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(postings, st.integers(1, 40))
def test_accumulate_and_best_equal_the_plain_ranking(pairs: list[tuple[int, float]], limit: int) -> None:
    ids = np.array([chunk for chunk, _ in pairs], dtype=np.int64)
    scores = np.array([score for _, score in pairs], dtype=np.float64)
    chunk_ids, sums = accumulate(ids, scores)
    assert list(chunk_ids) == sorted(set(ids.tolist()))
    ranked = [(int(chunk_ids[i]), float(sums[i])) for i in best(chunk_ids, sums, limit)]
    expected = reference(ids.tolist(), scores.tolist(), limit)
    assert [chunk for chunk, _ in ranked] == [chunk for chunk, _ in expected]
    assert np.allclose([score for _, score in ranked], [score for _, score in expected])

"""lode/search/fusion.py: min-max normalisation per leg, weighted sum, ranks, ties."""

from __future__ import annotations

import pytest

from lode.search.fusion import WEIGHTS, fuse


def test_each_leg_is_normalised_over_its_own_candidates_then_weighted() -> None:
    weights = {"lexical": 1.0, "text": 2.0}
    fused = fuse({"lexical": [(1, 30.0), (2, 20.0), (3, 10.0)], "text": [(3, 0.9), (1, 0.5)]}, weights)
    scores = {f.chunk_id: f.score for f in fused}
    # lexical: 1 -> 1, 2 -> 0.5, 3 -> 0; text: 3 -> 1, 1 -> 0 (its worst); a leg's raw scale does not matter
    assert scores == pytest.approx({1: 1.0, 2: 0.5, 3: 2.0})
    assert [f.chunk_id for f in fused] == [3, 1, 2]


def test_a_chunk_missing_from_a_leg_has_no_rank_there_and_scores_nothing_from_it() -> None:
    fused = {f.chunk_id: f for f in fuse({"lexical": [(7, 5.0), (8, 1.0)], "text": [(9, 0.3)], "code": []})}
    assert fused[7].ranks == {"lexical": 1, "text": None, "code": None}
    assert fused[8].ranks == {"lexical": 2, "text": None, "code": None}
    assert fused[9].ranks == {"lexical": None, "text": 1, "code": None}
    assert fused[8].score == 0.0  # the worst of its only leg


def test_a_leg_whose_scores_are_all_equal_counts_each_as_its_best() -> None:
    fused = fuse({"code": [(1, 0.4), (2, 0.4)]})
    assert [(f.chunk_id, f.score) for f in fused] == [(1, WEIGHTS["code"]), (2, WEIGHTS["code"])]


def test_equal_scores_are_ordered_by_chunk_id() -> None:
    fused = fuse({"lexical": [(5, 1.0), (4, 1.0)], "text": [(4, 1.0), (5, 1.0)]}, {"lexical": 1.0, "text": 1.0})
    assert [f.chunk_id for f in fused] == [4, 5]


def test_the_default_weights_apply_and_a_leg_without_a_weight_adds_nothing() -> None:
    legs = {"lexical": [(1, 2.0), (2, 1.0)], "code": [(2, 0.8), (1, 0.1)], "other": [(1, 9.0), (2, 0.0)]}
    scores = {f.chunk_id: f.score for f in fuse(legs)}
    assert scores == pytest.approx({1: WEIGHTS["lexical"], 2: WEIGHTS["code"]})


def test_no_rankings_fuse_to_nothing() -> None:
    assert fuse({}) == []
    assert fuse({"lexical": [], "text": []}) == []

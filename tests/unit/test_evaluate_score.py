"""lode/evaluate.py score(): the per-query metrics that `lode eval` and the benchmarks average."""

from __future__ import annotations

import math

import pytest

from lode.evaluate import METRICS, mean, score


def test_the_expected_item_first_scores_one_everywhere() -> None:
    assert score([0, None, None], 1) == {"MRR@10": 1.0, "nDCG@10": 1.0, "R@1": 1.0, "R@5": 1.0, "R@10": 1.0}


def test_the_expected_item_third() -> None:
    metrics = score([None, None, 0], 1)
    assert metrics == pytest.approx({"MRR@10": 1 / 3, "nDCG@10": 1 / math.log2(4), "R@1": 0.0, "R@5": 1.0,
                                     "R@10": 1.0})


def test_an_expected_item_counts_once_at_its_best_rank() -> None:
    metrics = score([None, 0, 0, 0], 1)
    assert metrics == pytest.approx({"MRR@10": 0.5, "nDCG@10": 1 / math.log2(3), "R@1": 0.0, "R@5": 1.0,
                                     "R@10": 1.0})


def test_two_expected_items_found_in_the_first_two_ranks_are_ideal() -> None:
    assert score([1, 0], 2)["nDCG@10"] == pytest.approx(1.0)
    assert score([1, None, 0], 2) == pytest.approx({
        "MRR@10": 1.0, "nDCG@10": (1 + 1 / 2) / (1 + 1 / math.log2(3)), "R@1": 0.5, "R@5": 1.0, "R@10": 1.0})


def test_only_the_first_ten_ranks_count() -> None:
    assert score([None] * 10 + [0], 1) == dict.fromkeys(METRICS, 0.0)
    assert score([], 3) == dict.fromkeys(METRICS, 0.0)


def test_mean_averages_each_metric_and_is_zero_for_no_queries() -> None:
    assert mean([score([0], 1), score([None, 0], 1)])["MRR@10"] == 0.75
    assert mean([]) == dict.fromkeys(METRICS, 0.0)

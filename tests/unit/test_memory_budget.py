"""How an index run fits LODE_MEMORY_BUDGET_MB: its workers (lode/indexer.py worker_count) and its graph
resolution (lode/store/graph.py ResolvePlan)."""

from __future__ import annotations

from pathlib import Path

from lode.config import Settings
from lode.indexer import worker_count
from lode.store.graph import _MEMO_ENTRY_BYTES, _MIN_MEMO_MB, ResolvePlan

MB = 2**20


def test_a_small_repository_forks_a_resolver_per_worker_in_runs() -> None:
    plan = ResolvePlan.within(budget_mb=1024, table_mb=55, workers=2, total_chars=13_000_000)
    assert plan.processes == 2 and not plan.over_budget
    assert plan.batch_chars * 2 * 4 >= 13_000_000, "at least four runs per resolver, no more"
    per_resolver = plan.memo_entries * _MEMO_ENTRY_BYTES / MB + 55 + 3 * 3 * plan.batch_chars / MB
    assert 2 * per_resolver + 55 <= 1024 + 1


def test_a_table_too_large_to_copy_is_resolved_in_the_process_with_the_rest_for_its_memo() -> None:
    plan = ResolvePlan.within(budget_mb=1024, table_mb=440, workers=2, total_chars=107_000_000)
    assert plan.processes == 0 and not plan.over_budget
    assert plan.batch_chars == 1024 * MB // 256, "4 MiB of references per batch"
    memo_mb = plan.memo_entries * _MEMO_ENTRY_BYTES / MB
    assert 500 < memo_mb and 440 + memo_mb + 2 * 3 * plan.batch_chars / MB <= 1024 + 1


def test_a_budget_below_the_table_keeps_the_smallest_memo_and_says_so() -> None:
    plan = ResolvePlan.within(budget_mb=256, table_mb=400, workers=2, total_chars=50_000_000)
    assert plan.processes == 0 and plan.over_budget
    assert plan.memo_entries == _MIN_MEMO_MB * MB // _MEMO_ENTRY_BYTES


def test_little_work_runs_in_one_batch_in_the_process() -> None:
    plan = ResolvePlan.within(budget_mb=1024, table_mb=5, workers=8, total_chars=500_000)
    assert plan.processes == 0 and plan.batch_chars == 500_000


def test_index_workers_are_capped_by_the_memory_budget_as_by_the_cores_and_the_run(tmp_path: Path) -> None:
    many_cores = Settings(home=tmp_path, index_workers=32)
    assert worker_count(many_cores, 10_000) == 1024 // 160, "the default budget holds six workers, not 32"
    assert worker_count(many_cores.model_copy(update={"memory_budget_mb": 8192}), 10_000) == 32
    assert worker_count(many_cores, 40) == 2, "one worker per 16 files"
    assert worker_count(many_cores.model_copy(update={"memory_budget_mb": 64}), 10_000) == 1
    assert worker_count(many_cores, 3) == 1

"""Where a worker's time goes, in one process: parsing and chunking a corpus's files, tokenizing the chunks
(chunk_postings), formatting their COPY rows (Chunks.format) and extracting the graph facts (extract_facts and
GraphBatch.of), each best of --repeat, with a digest of the rows so that checkouts can be compared for
byte-identical output.

Usage: PYTHONPATH=CHECKOUT python bench/index_worker_cost.py --corpus DIR [--repeat 5]
(run it once per checkout, alternating, and compare the times; the digests must be equal)
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_of(repeat: int, work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from lode.chunking.chunker import chunk_file_with_tree
    from lode.languages import language_for_path, module_name
    from lode.config import Settings
    from lode.discover import SourceTree
    from lode.graph import extract_facts
    from lode.store.graph import GraphBatch
    from lode.model import Candidate
    from lode.search.lexical import chunk_postings
    from lode.store.repositories import Chunks

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="lode-format-cost-")), embedder="none")
    with SourceTree(args.corpus, None) as tree:
        candidates = [item for item in tree.discover(settings) if isinstance(item, Candidate)]
        paths = frozenset(candidate.path for candidate in candidates)
        sources = [(candidate.path, tree.read(candidate, settings).text, language_for_path(candidate.path),
                    module_name(candidate.path, paths, language_for_path(candidate.path) or "text"))
                   for candidate in candidates]
    chunk_s, chunked_files = best_of(args.repeat, lambda: [
        chunk_file_with_tree(path, text, language, module, settings) for path, text, language, module in sources])
    files = [(path, chunked) for (path, *_), (chunked, _) in zip(sources, chunked_files)]
    tokenize_s, items = best_of(args.repeat, lambda: [
        [chunk_postings(chunk, path) for chunk in chunked.chunks] for path, chunked in files])
    format_s, batches = best_of(args.repeat, lambda: [
        Chunks.format(1, file_id, path, chunked.language, file_items)
        for file_id, ((path, chunked), file_items) in enumerate(zip(files, items), start=1)])
    facts_s, _ = best_of(args.repeat, lambda: [
        GraphBatch.of(1, file_id, extract_facts(path, text, chunked.language, module, chunked, syntax))
        for file_id, ((path, text, _, module), (chunked, syntax)) in enumerate(zip(sources, chunked_files), start=1)])
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch.chunk_rows + b"|" + batch.posting_rows + f"|{batch.count}|{batch.total_length}".encode())
    chunks = sum(batch.count for batch in batches)
    stages = {"parse + chunk": chunk_s, "tokenize": tokenize_s, "format rows": format_s, "graph facts": facts_s}
    total = sum(stages.values())
    megabytes = sum(len(text.encode()) for _, text, _, _ in sources) / 1e6
    print(f"{len(files)} files, {megabytes:.2f} MB, {chunks} chunks; best of {args.repeat}; "
          f"rows digest {digest.hexdigest()[:16]}")
    for stage, seconds in stages.items():
        print(f"  {stage:14} {seconds:.3f} s  {100 * seconds / total:4.1f} %")
    print(f"  {'total':14} {total:.3f} s  ({megabytes / total:.2f} MB/s on one core)")


if __name__ == "__main__":
    main()

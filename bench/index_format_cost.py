"""Worker-side CPU of the lexical rows: tokenizing a corpus's chunks (chunk_postings) and formatting their COPY
rows (Chunks.format), best of --repeat, with a digest of the output so that checkouts can be compared for
byte-identical rows. The files are read and chunked once, outside the timings.

Usage: PYTHONPATH=CHECKOUT python bench/index_format_cost.py --corpus DIR [--repeat 5]
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

    from lode.chunking import language_for_path, module_name
    from lode.chunking.chunker import chunk_file_with_tree
    from lode.config import Settings
    from lode.discover import SourceTree
    from lode.model import Candidate
    from lode.search.lexical import chunk_postings
    from lode.store.repositories import Chunks

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="lode-format-cost-")), embedder="none")
    files = []
    with SourceTree(args.corpus, None) as tree:
        candidates = [item for item in tree.discover(settings) if isinstance(item, Candidate)]
        paths = frozenset(candidate.path for candidate in candidates)
        for candidate in candidates:
            source = tree.read(candidate, settings)
            language = language_for_path(candidate.path)
            chunked, _ = chunk_file_with_tree(candidate.path, source.text, language,
                                              module_name(candidate.path, paths, language or "text"), settings)
            files.append((candidate.path, chunked))
    tokenize_s, items = best_of(args.repeat, lambda: [
        [chunk_postings(chunk, path) for chunk in chunked.chunks] for path, chunked in files])
    format_s, batches = best_of(args.repeat, lambda: [
        Chunks.format(1, file_id, path, chunked.language, file_items)
        for file_id, ((path, chunked), file_items) in enumerate(zip(files, items), start=1)])
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch.chunk_rows + b"|" + batch.posting_rows + f"|{batch.count}|{batch.total_length}".encode())
    chunks = sum(batch.count for batch in batches)
    print(f"{len(files)} files, {chunks} chunks: tokenize {tokenize_s:.3f} s, format {format_s:.3f} s "
          f"(best of {args.repeat}); rows digest {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()

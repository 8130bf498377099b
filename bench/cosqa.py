"""Lexical quality on the public CoSQA dev-500 set, next to bm25s over the same functions.

Usage: python bench/cosqa.py [--limit N]
Each function is written to f<id>.py in a temporary directory, indexed, and the 500 queries are run; the rank
of f<target>.py is scored with MRR@10, nDCG@10 and Recall@1/5/10.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED, fresh_engine, machine, quality  # noqa: E402
from lode.engine import Lode  # noqa: E402
from lode.search.tokens import tokenize  # noqa: E402

DATA = SHARED / "bench" / "cosqa-dev"


def load(limit: int | None) -> tuple[dict[int, str], list[dict]]:
    corpus = {ident: code for code, ident in json.loads((DATA / "corpus.json").read_text()).items()}
    queries = json.loads((DATA / "queries-dev-500.json").read_text())
    return corpus, queries[:limit] if limit else queries


def bm25s_rankings(corpus: dict[int, str], queries: list[dict], tokenizer: str) -> list[tuple[list[str], str]]:
    import bm25s

    ids = sorted(corpus)
    if tokenizer == "lode":
        corpus_tokens = [tokenize(corpus[i]) for i in ids]
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenization.Tokenized(*_vocab(corpus_tokens)), show_progress=False)
        query_tokens = [list(tokenize(q["query"])) for q in queries]
        vocab = _vocab(corpus_tokens)[1]
        encoded = [[vocab[t] for t in toks if t in vocab] or [0] for toks in query_tokens]
        docs, _ = retriever.retrieve(bm25s.tokenization.Tokenized(encoded, vocab), k=10, show_progress=False)
    else:
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize([corpus[i] for i in ids], stopwords="en", stemmer=stemmer,
                                       show_progress=False), show_progress=False)
        docs, _ = retriever.retrieve(bm25s.tokenize([q["query"] for q in queries], stopwords="en", stemmer=stemmer,
                                                    show_progress=False), k=10, show_progress=False)
    return [([f"f{ids[d]}.py" for d in row], f"f{q['target']}.py") for row, q in zip(docs.tolist(), queries)]


def _vocab(token_lists: list[list[str]]) -> tuple[list[list[int]], dict[str, int]]:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in toks] for toks in token_lists]
    return ids, vocab


def index_corpus(engine: Lode, corpus: dict[int, str], root: Path, embed: bool = False) -> None:
    """Write each function to root/f<id>.py and index it as repository "cosqa" (embedded too if asked)."""
    root.mkdir(parents=True, exist_ok=True)
    for ident, code in corpus.items():
        (root / f"f{ident}.py").write_text(code)
    engine.indexing.index(root, "cosqa")
    if embed:
        engine.embeddings.embed("cosqa")


def rankings(engine: Lode, queries: list[dict], mode: str = "lexical") -> list[tuple[list[str], str]]:
    out = []
    for q in queries:
        hits = engine.search.query(q["query"], repo="cosqa", mode=mode, k=30)["hits"]
        paths = list(dict.fromkeys(h["path"] for h in hits))  # a file split into parts counts once
        out.append((paths[:10], f"f{q['target']}.py"))
    return out


def lode_rankings(corpus: dict[int, str], queries: list[dict], mode: str = "lexical") -> list[tuple[list[str], str]]:
    engine = fresh_engine()
    with tempfile.TemporaryDirectory(prefix="cosqa-") as tmp:
        index_corpus(engine, corpus, Path(tmp))
        out = rankings(engine, queries, mode)
    engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    args = parser.parse_args()
    corpus, queries = load(args.limit)
    rows = {
        "lode lexical": quality(lode_rankings(corpus, queries)),
        "bm25s (its tokenizer, English stop words, Snowball stemmer)":
            quality(bm25s_rankings(corpus, queries, "bm25s")),
        "bm25s (Lode's tokens: identifiers split, stemmed)": quality(bm25s_rankings(corpus, queries, "lode")),
    }
    print(f"CoSQA dev-500, {len(queries)} queries, {len(corpus)} functions; {machine()}")
    print("| system | MRR@10 | nDCG@10 | R@1 | R@5 | R@10 |\n| --- | --- | --- | --- | --- | --- |")
    for name, m in rows.items():
        print(f"| {name} | {m['MRR@10']:.3f} | {m['nDCG@10']:.3f} | {m['R@1']:.3f} | {m['R@5']:.3f} "
              f"| {m['R@10']:.3f} |")


if __name__ == "__main__":
    main()

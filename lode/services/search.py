"""Search: the legs (lexical, and the text and code vectors) run in parallel, fused, ranked by the query's
priors, optionally grouped by file and expanded along the graph; and the symbol table's lookup by name."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import psycopg

from lode.config import Settings
from lode.errorlog import record_error
from lode.errors import InputError, LodeError
from lode.model import Hit, Mode
from lode.resilience import CircuitBreakerError
from lode.search import lexical, ranking
from lode.search.filters import Filters, canonical_languages, checked_kinds
from lode.search.fusion import KIND_WEIGHTS, WEIGHTS, fuse
from lode.search.highlight import highlights
from lode.search.query import Query, QueryKind, parse
from lode.search.tokens import tokenize
from lode.services.base import RepoScope, Service, check_text, repos_in_scope
from lode.services.graph import hop_json
from lode.store import graph_queries
from lode.store.db import set_local
from lode.store.postings import Postings
from lode.store.repositories import RepoRow
from lode.store.search_rows import Injections, SearchRows
from lode.store.symbols import Symbols
from lode.store.vectors import Vectors

if TYPE_CHECKING:
    from lode.embedding.base import Embedder
    from lode.engine import Lode

log = logging.getLogger(__name__)

MAX_QUERY_BYTES = 64 * 1024  # an issue body with its traceback fits; UTF-8 bytes
GROUPS = ("chunks", "files")
EVIDENCE_PER_FILE = 3  # a file of the file mode comes with its best chunks
DEFINITIONS_LOOKED_UP = 200  # definition chunks the symbol table may add to a query's candidates
FRAME_CHUNKS_LOOKED_UP = 200  # chunks of files named in the query that may be added
MAX_K = 200
LEG_DEPTH = 100  # candidates each leg contributes to hybrid fusion
# hnsw.ef_search under LODE_EF_SEARCH=auto: one candidate per CHUNKS_PER_EF chunks of the model's HNSW graphs,
# within pgvector's range; calibrated for recall@10 >= 0.95 (docs/benchmarks.md, bench/ef_search.py)
EF_SEARCH_MIN, EF_SEARCH_MAX, CHUNKS_PER_EF = 100, 1000, 150


def ef_search(setting: int | str, graph_chunks: int, depth: int) -> int:
    """hnsw.ef_search for a vector leg returning `depth` hits from HNSW graphs of `graph_chunks` vectors:
    LODE_EF_SEARCH when it is a number, else one that grows with the graphs; never below `depth`."""
    if setting == "auto":
        setting = min(max(-(-graph_chunks // CHUNKS_PER_EF), EF_SEARCH_MIN), EF_SEARCH_MAX)
    return min(max(int(setting), depth), EF_SEARCH_MAX)


class SearchService(Service):
    def __init__(self, lode: Lode) -> None:
        super().__init__(lode)
        self.ranking_disabled = _ranking_disabled(lode.settings)  # an unknown prior fails when Lode is made
        self._complete: set[tuple[int, int, int | None]] = set()  # (repo, generation, model) fully embedded

    def fingerprint(self) -> tuple[Any, ...]:
        """What the ranking of a cached answer depended on: a change of any of it must not serve stale answers."""
        return (LEG_DEPTH, self.settings.ef_search, sorted(WEIGHTS.items()), self.settings.ranking,
                sorted(self.ranking_disabled), sorted((kind, sorted(w.items())) for kind, w in KIND_WEIGHTS.items()),
                _ranking_constants())

    def query(
        self,
        query: str,
        *,
        repo: RepoScope = None,
        mode: Mode | str = Mode.HYBRID,
        k: int = 10,
        languages: tuple[str, ...] = (),
        path: str | None = None,
        kinds: tuple[str, ...] = (),
        expand: bool = False,
        group: str = "chunks",
    ) -> dict[str, Any]:
        """Hits best first; group="files" adds `files`: the files best first, each with its best hits."""
        _check_query(query)
        for label, values in (("--path", (path,) if path else ()), ("--kind", kinds), ("--lang", languages)):
            for value in values:
                check_text(label, value)
        chosen = _search_mode(mode)
        if chosen is Mode.SEMANTIC and self.settings.embedder == "none":
            raise InputError("--mode semantic needs an embedding provider; LODE_EMBEDDER is 'none'")
        if not 1 <= k <= MAX_K:
            raise InputError(f"-k must be between 1 and {MAX_K}")
        languages, kinds = canonical_languages(languages), checked_kinds(kinds)
        if group not in GROUPS:
            raise InputError(f"group must be one of {', '.join(GROUPS)}, not {group!r}")
        filters = Filters(languages=languages, kinds=kinds, path_glob=path)
        filters.sql("c")  # validates the glob before any database work
        with self.db.read() as conn:
            repos = repos_in_scope(conn, repo)
        settled = not expand or self.lode.graph.settle(repos)
        if not repos:
            return {"query": query, "mode": chosen.value, "degraded": [], "hits": [],
                    **({"files": []} if group == "files" else {})}
        return self.lode.cache.through(
            "search", repos, (query, chosen.value, k, languages, path, kinds, expand, group),
            lambda: self._search(query, repos, chosen, k, filters, expand, group),
            cacheable=lambda result: settled and not result["degraded"],  # pending embeddings keep the generation
        )

    def legs(self, query: str, *, repo: RepoScope = None, depth: int = LEG_DEPTH) -> dict[str, list[tuple[int, float]]]:
        """Each leg's ranking of `query` before fusion, run as a hybrid search runs its legs (the query read the
        same way, under the same deadline): {"lexical", "text", "code": [(chunk id, score), ...] best first}, at
        most `depth` each. lode.search.fusion.fuse of them is a hybrid search's order before the ranking stage.
        For tuning and benchmarks: a leg that could not rank every chunk (nothing or not everything embedded, a
        provider or database failure, the hybrid deadline) is an error rather than a degraded answer."""
        _check_query(query)
        if not 1 <= depth <= EF_SEARCH_MAX:
            raise InputError(f"depth must be between 1 and {EF_SEARCH_MAX}")
        with self.db.read() as conn:
            repos = repos_in_scope(conn, repo)
        if not repos:
            return {"lexical": [], "text": [], "code": []}
        legs, degraded = self._run_legs(query, self._plan(query), repos, Mode.HYBRID, Filters(), depth)
        if degraded:
            raise LodeError(f"the {', '.join(degraded)} leg(s) could not rank every chunk (see `lode errors`; "
                            "`lode embed` if embeddings are missing)")
        return legs

    def _plan(self, query: str) -> Query | None:
        """How the ranking stage reads the query, or None with LODE_RANKING=off."""
        return parse(query) if self.settings.ranking == "on" else None

    def _search(self, query: str, repos: list[RepoRow], mode: Mode, k: int, filters: Filters,
                expand: bool, group: str) -> dict[str, Any]:
        plan = self._plan(query)
        staged = plan is not None or group == "files"  # the file mode ranks the candidates even unranked
        depth = k if mode is Mode.LEXICAL and not staged else max(LEG_DEPTH, k)
        legs, degraded = self._run_legs(query, plan, repos, mode, filters, depth)
        if mode is Mode.LEXICAL:
            fused = [(cid, score, {"lexical": rank, "text": None, "code": None})
                     for rank, (cid, score) in enumerate(legs["lexical"], start=1)]
        else:
            weights = KIND_WEIGHTS[plan.kind] if plan is not None else WEIGHTS
            fused = [(f.chunk_id, f.score, {leg: f.ranks.get(leg) for leg in ("lexical", "text", "code")})
                     for f in fuse(legs, weights)]
        names = {r.id: r.name for r in repos}
        if not staged:
            with self.db.read() as conn:
                hits = [_hit_json(h) for h in self._hits(conn, fused[:k], names, query)]
            if expand:
                self._expand(hits, repos)
            return {"query": query, "mode": mode.value, "degraded": degraded, "hits": hits}
        with self.db.read() as conn:  # one connection for the candidates and the hits: a pool checkout is not free
            candidates = self._candidates(conn, fused, plan, repos, filters)
            if plan is None:
                ordered = [ranking.Ranked(c, c.score) for c in candidates]
            else:
                ordered = ranking.rank(plan, candidates, self.ranking_disabled)
            grouped = ranking.files(ordered, EVIDENCE_PER_FILE)[:k] if group == "files" else []
            shown = {r.candidate.chunk_id: r for r in ordered[:k]}
            shown.update((r.candidate.chunk_id, r) for f in grouped for r in f.evidence)
            found = {h.chunk_id: h for h in self._hits(conn, [_ranked_row(r) for r in shown.values()], names, query)}
        hits = [_hit_json(found[r.candidate.chunk_id]) for r in ordered[:k] if r.candidate.chunk_id in found]
        if expand:
            self._expand(hits, repos)
        result: dict[str, Any] = {"query": query, "mode": mode.value, "degraded": degraded, "hits": hits}
        if plan is not None:
            result["query_kind"] = plan.kind.value
        if group == "files":
            result["files"] = [
                {"repo": names[f.repo_id], "path": f.path, "language": found[f.evidence[0].candidate.chunk_id].language
                 if f.evidence[0].candidate.chunk_id in found else None, "score": round(f.score, 6),
                 "hits": [_hit_json(found[r.candidate.chunk_id]) for r in f.evidence if r.candidate.chunk_id in found]}
                for f in grouped
            ]
        return result

    def _candidates(self, conn: psycopg.Connection, fused: list[tuple[int, float, dict[str, int | None]]],
                    plan: Query | None, repos: list[RepoRow], filters: Filters) -> list[ranking.Candidate]:
        """The fused chunks with what the priors read (path, kind, names, lines), and the chunks the legs missed
        that the query names: definitions of its identifiers (symbol table) and chunks of files it names."""
        names = plan.names if plan is not None and "definition" not in self.ranking_disabled else []
        named = [f.path for f in plan.frames] + plan.paths if plan is not None else []
        paths = sorted({tail for p in named for tail in ranking.path_suffixes(p)}
                       if "frame" not in self.ranking_disabled else ())
        injections = Injections(names=names, definition_kinds=sorted(ranking.DEFINITION_KINDS),
                                definitions_limit=DEFINITIONS_LOOKED_UP, paths=paths,
                                paths_limit=FRAME_CHUNKS_LOOKED_UP)
        rows, extra = SearchRows(conn).candidates([cid for cid, _, _ in fused], [r.id for r in repos], filters,
                                                  injections)
        candidates = [_candidate(rows[cid], score, legs) for cid, score, legs in fused if cid in rows]
        empty: dict[str, int | None] = {"lexical": None, "text": None, "code": None}
        candidates.extend(_candidate(row, 0.0, dict(empty), why) for cid, (row, why) in extra.items()
                          if cid not in rows)
        return candidates

    def _run_legs(self, query: str, plan: Query | None, repos: list[RepoRow], mode: Mode, filters: Filters,
                  depth: int) -> tuple[dict[str, list[tuple[int, float]]], list[str]]:
        """Run the legs `mode` needs in parallel; return their rankings and the legs degraded.

        In hybrid mode a leg that fails, or is still running when LODE_TIMEOUT_HYBRID_SEARCH has passed, is
        dropped (its statement cancelled) and reported as degraded; only when every leg is lost is it an error."""
        timeout = self.settings.timeouts.hybrid_search
        deadline = time.monotonic() + timeout if mode is Mode.HYBRID else None
        statements = _RunningStatements()
        pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lode-leg")
        futures: dict[str, Future[Any]] = {}  # the lexical leg's ranking; the semantic legs' rankings and gaps
        if mode is not Mode.SEMANTIC:
            futures["lexical"] = pool.submit(self._lexical_leg, query, plan, repos, filters, depth, statements)
        if mode is not Mode.LEXICAL:
            embedded = plan.focus() if plan is not None else query  # a long query: its prose head and names
            futures["semantic"] = pool.submit(self._semantic_legs, pool, embedded, repos, filters, depth, statements)
        legs: dict[str, list[tuple[int, float]]] = {}
        degraded: list[str] = []
        reasons: list[str] = []
        try:
            for name, future in futures.items():
                lost = ["lexical"] if name == "lexical" else ["text", "code"]
                try:
                    result = future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    record_error("search", message=f"the {name} leg missed the hybrid search deadline of {timeout}s "
                                 "(LODE_TIMEOUT_HYBRID_SEARCH); dropped", severity="warning", category="timeout",
                                 context={"leg": name, "mode": mode.value, "repos": [r.name for r in repos]})
                    degraded.extend(lost)
                    reasons.append(f"the {name} leg missed the {timeout}s deadline")
                    continue
                except (LodeError, psycopg.Error) as exc:
                    if mode is not Mode.HYBRID:
                        raise
                    record_error("search", exc, severity="warning", category="degraded",
                                 context={"leg": name, "mode": mode.value, "repos": [r.name for r in repos]})
                    degraded.extend(lost)
                    reasons.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    continue
                if name == "lexical":
                    legs["lexical"] = result
                    continue
                semantic_legs, missing = result
                if mode is Mode.SEMANTIC and len(missing) == 2:
                    raise LodeError(f"semantic search is unavailable: {missing['text']}")
                degraded.extend(missing)
                legs.update(semantic_legs)
        finally:
            statements.cancel_all()  # the statements of legs dropped at the deadline stop now
            pool.shutdown(wait=False, cancel_futures=True)
        if not legs:
            raise LodeError(f"search failed: {'; '.join(reasons) or 'no leg could run'}")
        return legs, degraded

    def _lexical_leg(self, query: str, plan: Query | None, repos: list[RepoRow], filters: Filters, depth: int,
                     statements: _RunningStatements) -> list[tuple[int, float]]:
        with self.db.read(self.settings.timeouts.lexical_search) as conn, statements.track(conn):
            try:
                terms = None
                if plan is not None and plan.kind is QueryKind.LONG:  # the rare words and the names, capped
                    every = sorted(set(tokenize(query)))
                    terms = plan.lexical_terms(Postings(conn).document_frequencies(every, [r.id for r in repos]))
                return lexical.search(
                    conn, query, [r.id for r in repos], sum(r.chunk_count for r in repos),
                    sum(r.total_length for r in repos), filters, depth, terms,
                )
            except psycopg.errors.QueryCanceled as exc:
                raise LodeError(
                    f"lexical search timed out after {self.settings.timeouts.lexical_search}s "
                    "(LODE_TIMEOUT_LEXICAL_SEARCH)"
                ) from exc

    def _semantic_legs(
        self, pool: ThreadPoolExecutor, query: str, repos: list[RepoRow], filters: Filters, depth: int,
        statements: _RunningStatements,
    ) -> tuple[dict[str, list[tuple[int, float]]], dict[str, str]]:
        """Run the text and code legs; return their rankings and, for legs that could not run, why."""
        from lode.embedding.base import EmbeddingError

        def unavailable(reason: str) -> tuple[dict, dict[str, str]]:
            return {}, {"text": reason, "code": reason}

        try:
            embedder = self.lode.embedder
        except EmbeddingError as exc:
            return unavailable(str(exc))
        if embedder is None:
            return unavailable("no embedding provider (LODE_EMBEDDER=none)")
        serving = {r.embedding_model for r in repos if r.embedding_model is not None}
        if not serving:
            return unavailable("nothing is embedded yet")
        if len(serving) > 1:
            return unavailable("the repositories searched were embedded with different models")
        model = serving.pop()
        with self.db.read() as conn:
            vectors = Vectors(conn)
            model_id = vectors.models()[model][0]
            ef = ef_search(self.settings.ef_search, vectors.served_chunks(model), depth)
        if model_id != embedder.model_id:
            return unavailable(f"the index was embedded with {model_id}, the configured model is {embedder.model_id}")
        pending = self._pending(repos)
        if pending >= sum(r.chunk_count for r in repos):  # the backfill has not stored a vector yet: load no model
            return unavailable("nothing is embedded yet")
        try:
            vector = self._query_vector(embedder, query)
        except EmbeddingError as exc:
            if not isinstance(exc.__cause__, CircuitBreakerError):  # an open breaker was recorded when it opened
                record_error("embedding.query", exc, severity="warning", category="degraded",
                             context={"model": embedder.model_id})
            return unavailable(f"the embedding provider failed: {exc}")
        futures = {
            leg: pool.submit(self._vector_leg, model, leg, vector, [r.id for r in repos], filters, depth, ef,
                           statements)
            for leg in ("text", "code")
        }
        legs = {leg: future.result() for leg, future in futures.items()}
        missing = dict.fromkeys(legs, f"{pending} chunks are not embedded yet") if pending else {}
        return legs, missing

    def _pending(self, repos: list[RepoRow]) -> int:
        """Chunks without vectors. A generation once complete stays complete, so it is counted once."""
        pending = 0
        for r in repos:
            key = (r.id, r.generation, r.embedding_model)
            if key in self._complete:
                continue
            with self.db.connection() as conn:
                count = Vectors(conn).counts(r.id, r.embedding_model)["pending"]
            if count == 0:
                self._complete.add(key)
            pending += count
        return pending

    def _query_vector(self, embedder: Embedder, query: str) -> Any:
        return self.lode.cache.query_vector(embedder.model_id, query, lambda: embedder.embed_query(query))

    def _vector_leg(self, model: int, leg: str, vector: Any, repo_ids: list[int], filters: Filters,
                    depth: int, ef: int, statements: _RunningStatements) -> list[tuple[int, float]]:
        with self.db.read(self.settings.timeouts.vector_search) as conn, statements.track(conn):
            set_local(conn, "hnsw.ef_search", str(ef))
            set_local(conn, "hnsw.iterative_scan", "relaxed_order")
            return Vectors(conn).nearest(model, leg, vector, repo_ids, filters, depth)

    def symbols(self, name: str, *, repo: RepoScope = None, limit: int = 20) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 500:
            raise InputError("a symbol name needs 1 to 500 characters")
        check_text("the symbol name", name)
        if not 1 <= limit <= MAX_K:
            raise InputError(f"--limit must be between 1 and {MAX_K}")
        with self.db.read(self.settings.timeouts.symbol_lookup) as conn:
            repo_ids = [r.id for r in repos_in_scope(conn, repo)]
            found = Symbols(conn).lookup(name, repo_ids, limit)
            suggestions = [] if found else Symbols(conn).similar_names(name, repo_ids)  # a miss: close names
        return {"query": name, "symbols": [asdict(match) for match in found], "suggestions": suggestions}

    def _expand(self, hits: list[dict[str, Any]], repos: list[RepoRow]) -> None:
        """Attach each hit's direct callers and callees (names and locations)."""
        names = {r.id: r.name for r in repos}
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repo_ids = [r.id for r in repos]
            for hit in hits:
                if not hit["name_path"]:
                    hit["callers"], hit["callees"] = [], []
                    continue
                try:
                    hit["callers"] = [hop_json(h, names) for h in
                                      graph_queries.callers(conn, repo_ids, hit["name_path"], limit=20).hops]
                    hit["callees"] = [hop_json(h, names) for h in
                                      graph_queries.callees(conn, repo_ids, hit["name_path"], limit=20).hops]
                except (graph_queries.AmbiguousSymbol, graph_queries.SymbolNotFound):
                    hit["callers"], hit["callees"] = [], []

    def _hits(self, conn: psycopg.Connection, ranked: list[tuple[int, float, dict[str, int | None]]],
              repo_names: dict[int, str], query: str) -> list[Hit]:
        by_id = SearchRows(conn).hits([cid for cid, _, _ in ranked])
        terms = set(tokenize(query))
        hits = []
        for chunk_id, score, legs in ranked:
            row = by_id.get(chunk_id)
            if row is None:  # replaced since the legs ran
                continue
            _, repo_id, path, start, end, kind, name, name_path, language, content = row
            first, excerpt = snippet(content, terms)
            hits.append(Hit(
                repo=repo_names[repo_id], path=path, start_line=start, end_line=end, kind=kind, name=name,
                name_path=name_path, language=language, score=round(score, 6),
                legs=legs, snippet=excerpt, highlights=highlights(excerpt, terms), snippet_line=start + first,
                chunk_id=chunk_id,
            ))
        return hits


def _search_mode(value: Mode | str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InputError(f"--mode must be one of {', '.join(Mode)}, not {value!r}") from None


class _RunningStatements:
    """The connections of search legs still running, so that a missed deadline cancels their statements."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: set[psycopg.Connection] = set()
        self._closed = False

    @contextmanager
    def track(self, conn: psycopg.Connection) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise LodeError("the search deadline passed before this leg started")
            self._connections.add(conn)
        try:
            yield
        finally:
            with self._lock:
                self._connections.discard(conn)

    def cancel_all(self) -> None:
        """Cancel what still runs. Under the lock, so no leg can hand its connection back to the pool (where a
        late cancel would hit someone else's statement) until the cancels are sent."""
        with self._lock:
            self._closed = True
            for conn in self._connections:
                try:
                    conn.cancel_safe(timeout=2.0)
                except Exception as exc:  # the leg ends at its own statement_timeout instead
                    log.warning("cannot cancel a search leg's statement: %s", exc)


def snippet(content: str, terms: set[str], lines: int = 6) -> tuple[int, str]:
    """The window of `lines` lines that mentions the most query terms (stems match as substrings), and the index
    of its first line within `content`."""
    all_lines = content.splitlines()
    if len(all_lines) <= lines:
        return 0, content.rstrip()
    scores = [sum(term in line for term in terms) for line in content.lower().splitlines()]
    best = max(range(len(all_lines) - lines + 1), key=lambda i: (sum(scores[i : i + lines]), -i))
    return best, "\n".join(all_lines[best : best + lines])


def _check_query(query: str) -> None:
    if not query or not query.strip():
        raise InputError("the query is empty")
    check_text("the query", query)
    size = len(query.encode("utf-8"))
    if size > MAX_QUERY_BYTES:
        raise InputError(f"the query is {size} bytes; the limit is {MAX_QUERY_BYTES} (64 KiB)")


def _ranking_disabled(settings: Settings) -> frozenset[str]:
    names = frozenset(filter(None, (n.strip() for n in settings.ranking_disable.split(","))))
    unknown = names - set(ranking.PRIORS)
    if unknown:
        raise InputError(f"LODE_RANKING_DISABLE: unknown priors {', '.join(sorted(unknown))}; "
                         f"the priors are {', '.join(ranking.PRIORS)}")
    return names


def _ranking_constants() -> list[Any]:
    """The ranking stage's tunables, for the cache fingerprint: a tuned constant must not serve stale answers."""
    return [[kind.value, list(f)] for kind, f in ranking.DEFINITION_FACTORS.items()] + [
        sorted(ranking.ROLE_FACTORS.items()), ranking.PATH_STEM_WEIGHT, ranking.PATH_FOLDER_WEIGHT,
        ranking.FRAME_FACTOR, ranking.FRAME_LINE_FACTOR, ranking.NAMED_PATH_FACTOR, ranking.SUPERSEDED_FACTOR,
        ranking.COHERENCE_WEIGHT, ranking.SATURATION, ranking.INJECTED_SHARE]


def _candidate(row: tuple, score: float, legs: dict[str, int | None], injected: str | None = None
               ) -> ranking.Candidate:
    cid, repo_id, path, kind, name, name_path, start, end = row
    return ranking.Candidate(chunk_id=cid, path=path, kind=kind, name=name, name_path=name_path, start_line=start,
                             end_line=end, score=score, legs=legs, repo_id=repo_id, injected=injected)


def _ranked_row(r: ranking.Ranked) -> tuple[int, float, dict[str, Any]]:
    """(chunk id, final score, legs): the legs' ranks, the fused score and each prior's factor."""
    c = r.candidate
    legs: dict[str, Any] = {**c.legs, "fused": round(c.score, 6), "priors": dict(r.factors)}
    if c.injected:
        legs["injected"] = c.injected
    return c.chunk_id, r.score, legs


def _hit_json(hit: Hit) -> dict[str, Any]:
    out = asdict(hit)
    out.pop("chunk_id")
    return out

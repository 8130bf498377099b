"""The core that every interface shares (the CLI, the REST API, MCP). Its statements are lode/store's classes;
what SQL is left here is listed in tests/unit/test_sql_boundaries.py."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import psycopg

from lode.cache import Cache
from lode.config import Settings, get_settings
from lode.discover import RootError, RootUnavailable, SourceTree, ensure_indexable_root
from lode import graph
from lode.errors import InputError, LodeError, NotFound, unknown_repository
from lode import errorlog
from lode.errorlog import record_error
from lode.resilience import CircuitBreakerError
from lode.graph.store import GraphStore
from lode.indexer import Indexer, IndexReport, ProgressCallback
from lode.model import Candidate, Hit, Mode, Skipped
from lode.embedding.backfill import BackfillProgress, backfill, counts, pending_ranges, through_outages
from lode.search import lexical
from lode.search import ranking
from lode.search.filters import Filters, canonical_languages, checked_kinds
from lode.search.fusion import KIND_WEIGHTS, WEIGHTS, fuse
from lode.search.highlight import highlights
from lode.search.pattern import PatternSearch, compile_pattern
from lode.search.query import Query, QueryKind, parse
from lode.search.tokens import tokenize
from lode.store.db import Database, set_local
from lode.store.repositories import FileRow, Files, IndexRuns, RepoRow, Repositories, SkippedFiles
from lode.store.symbols import Symbols
from lode.store.uow import unit_of_work
from lode.store.vectors import Vectors

if TYPE_CHECKING:
    from lode.embedding.base import Embedder

log = logging.getLogger(__name__)

MAX_QUERY_BYTES = 64 * 1024  # an issue body with its traceback fits; UTF-8 bytes
GROUPS = ("chunks", "files")
EVIDENCE_PER_FILE = 3  # a file of the file mode comes with its best chunks
DEFINITIONS_LOOKED_UP = 200  # definition chunks the symbol table may add to a query's candidates
FRAME_CHUNKS_LOOKED_UP = 200  # chunks of files named in the query that may be added
MAX_K = 200
LAST_LINE = 2**31 - 1  # past the end of any file (line numbers are PostgreSQL integers)
MAX_OUTLINE = 2000  # definitions in one outline
MAX_GREP_MATCHES = 1000
OUTLINE_SKIPPED_KINDS = ("window", "module")  # text windows and whole-module chunks are not definitions
LEG_DEPTH = 100  # candidates each leg contributes to hybrid fusion
# hnsw.ef_search under LODE_EF_SEARCH=auto: one candidate per CHUNKS_PER_EF chunks of the model's HNSW graphs,
# within pgvector's range; calibrated for recall@10 >= 0.95 (docs/benchmarks.md, bench/ef_search.py)
EF_SEARCH_MIN, EF_SEARCH_MAX, CHUNKS_PER_EF = 100, 1000, 150
_BACKFILL_LOCK = 0x454D  # first key of pg_advisory_lock(int, int): one backfill per repository
_EMBED_BATCH_LOCK = 0x4542  # first key: one worker per batch of a shared backfill (second key: a hash of it)
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _search_mode(value: Mode | str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise InputError(f"--mode must be one of {', '.join(Mode)}, not {value!r}") from None


def ef_search(setting: int | str, graph_chunks: int, depth: int) -> int:
    """hnsw.ef_search for a vector leg returning `depth` hits from HNSW graphs of `graph_chunks` vectors:
    LODE_EF_SEARCH when it is a number, else one that grows with the graphs; never below `depth`."""
    if setting == "auto":
        setting = min(max(-(-graph_chunks // CHUNKS_PER_EF), EF_SEARCH_MIN), EF_SEARCH_MAX)
    return min(max(int(setting), depth), EF_SEARCH_MAX)


_UNSET = object()

# what a query reads: every repository (None), one by name, or the names an API key is scoped to (a tuple)
RepoScope = str | tuple[str, ...] | None


class Lode:
    """`revive_database`: a long-running server (`lode serve`) restarts the embedded PostgreSQL itself when it
    finds it gone; a command fails with DatabaseUnavailable instead, and its next run restarts it."""

    def __init__(self, settings: Settings | None = None, *, revive_database: bool = False) -> None:
        self.settings = settings or get_settings()
        self._revive_database = revive_database
        errorlog.init_sentry(self.settings.sentry_dsn)  # when set, handled errors go to Sentry too
        self._db: Database | None = None
        self._embedder: object = _UNSET
        self._ranking_disabled = _ranking_disabled(self.settings)
        self.cache = Cache(self.settings, lambda: self.db,
                           ranking=(LEG_DEPTH, self.settings.ef_search, sorted(WEIGHTS.items()),
                                    self.settings.ranking, sorted(self._ranking_disabled),
                                    sorted((kind, sorted(w.items())) for kind, w in KIND_WEIGHTS.items()),
                                    _ranking_constants()))
        self._complete: set[tuple[int, int, int | None]] = set()  # (repo, generation, model) fully embedded

    @property
    def db(self) -> Database:
        if self._db is None:
            url, revive = self.settings.database_url, None
            if not url:
                from lode.store import embedded

                url = embedded.start(self.settings.home, self.settings.embedded_idle_seconds)
                if self._revive_database:
                    revive = functools.partial(embedded.restart_if_stopped, self.settings.home)
            self._db = Database(url, self.settings, revive).open()
            errorlog.bind(self._db)  # handled errors of this process go to its error_logs
        return self._db

    @property
    def embedder(self) -> Embedder | None:
        """The configured provider, or None for `none`. Loading it is deferred until a leg needs it."""
        if self._embedder is _UNSET:
            from lode.embedding import get_embedder

            self._embedder = get_embedder(self.settings)
        return self._embedder  # type: ignore[return-value]  # no longer _UNSET: set just above

    def close(self) -> None:
        self.cache.close()
        if self._db is not None:
            errorlog.unbind(self._db)
            self._db.close()
            self._db = None

    def __enter__(self) -> Lode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- indexing -------------------------------------------------------------------------------------

    def index_target(self, path: str | Path, repo: str | None = None,
                     authorize: Callable[[str], None] = lambda name: None,
                     within: Path | None = None) -> tuple[Path, str]:
        """The resolved root and the repository name that indexing `path` uses; InputError if it cannot.
        `authorize(name)` may refuse the name (an API key's scope) before anything about that repository is
        looked up; `within`: the root must resolve under that directory (RootUnavailable otherwise)."""
        try:
            root = ensure_indexable_root(Path(path))
        except RootError as exc:
            raise InputError(str(exc)) from exc
        if within is not None and not root.is_relative_to(within.resolve()):  # e.g. a directory became a symlink
            raise RootUnavailable(f"{path} is no longer under the allowed root {within}; nothing was indexed")
        name = repo or _default_repo_name(root)
        _check_repo_name(name)
        authorize(name)
        with self.db.connection() as conn:
            existing = Repositories(conn).get(name)
        if existing and Path(existing.root) != root:
            raise InputError(f"repository {name!r} is indexed from {existing.root}",
                             cli=f"pass --repo to index {root} under another name",
                             tools=f"pass repo= to index {root} under another name")
        return root, name

    def index(self, path: str | Path, repo: str | None = None, on_progress: ProgressCallback | None = None,
              should_stop: Callable[[], bool] | None = None, defer_graph: bool = False,
              within: Path | None = None) -> IndexReport:
        """Index a directory incrementally. should_stop is checked between files: True ends the run with
        IndexCancelled, leaving every file stored so far whole. defer_graph leaves a large graph resolution
        to resolve_graph() (report.graph_pending); graph queries finish it first in any case. `within` confines
        the run to a directory (an allowed root of the API), checked when the run starts."""
        root, name = self.index_target(path, repo, within=within)
        report = Indexer(self.db, self.settings).run(root, name, on_progress, should_stop, defer_graph, within)
        with self.db.connection() as conn:
            row = Repositories(conn).get(name)
        report.chunks = row.chunk_count if row else 0
        return report

    # ---- queries --------------------------------------------------------------------------------------

    # ---- embeddings -----------------------------------------------------------------------------------

    def embed(
        self, repo: str, *, switch: bool = False, on_progress: Callable[[BackfillProgress], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> BackfillProgress:
        """Fill a repository's pending vectors with the configured model (resumable), holding its backfill lock.

        switch=True re-embeds a repository built with another model: the old vectors serve searches until the
        new ones are complete, then one transaction switches over and drops the old ones.
        """
        with self.db.connection() as conn:
            row = self._repos_for(conn, repo)[0]
        with _embedding_errors(repo):
            embedder, model = self._embedding_model(row, switch, should_stop)
            with self.db.advisory_lock(_BACKFILL_LOCK, row.id, wait=0) as held:
                if not held:
                    return counts(self.db, row.id, model)  # another process is filling this repository
                progress = backfill(self.db, embedder, row.id, model, on_progress, should_stop,
                                    outage_wait=self.settings.embedding.outage_wait_seconds)
        self.finish_embedding(row.id, model, progress)
        return progress

    def embed_plan(self, repo: str, batch_chunks: int,
                   should_stop: Callable[[], bool] = lambda: False) -> tuple[int, int, list[tuple[int, int]]]:
        """(repository id, model, ranges of chunk ids): the pending backfill split into batches of `batch_chunks`
        chunks that any number of workers can share (see embed_range)."""
        with self.db.connection() as conn:
            row = self._repos_for(conn, repo)[0]
        with _embedding_errors(repo):
            _, model = self._embedding_model(row, False, should_stop)
        return row.id, model, pending_ranges(self.db, row.id, model, batch_chunks)

    def embed_range(self, repo_id: int, model: int, first: int, last: int, *, wait: float | None,
                    should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Embed the pending chunks of one batch (ids first..last) under the batch's advisory lock, waiting up to
        `wait` seconds for it; False if another worker held it. Running a batch twice is harmless: the second
        run finds nothing pending."""
        embedder = self.embedder
        if embedder is None:
            raise InputError("no embedding provider: LODE_EMBEDDER is 'none'")
        key = zlib.crc32(f"{repo_id}:{model}:{first}".encode()) & 0x7FFFFFFF
        with _embedding_errors(str(repo_id)), self.db.advisory_lock(_EMBED_BATCH_LOCK, key, wait) as held:
            if held:
                backfill(self.db, embedder, repo_id, model, should_stop=should_stop,
                         outage_wait=self.settings.embedding.outage_wait_seconds, first=first, last=last)
        return held

    def finish_embedding(self, repo_id: int, model: int, progress: BackfillProgress | None = None) -> BackfillProgress:
        """The repository's counts; once nothing is pending, a model switch takes effect."""
        progress = progress or counts(self.db, repo_id, model)
        if progress.pending == 0:
            with self.db.connection() as conn:
                serving = Repositories(conn).serving_model(repo_id)
            if serving not in (None, model):
                self._switch_over(repo_id, model)
        return progress

    def _embedding_model(self, row: RepoRow, switch: bool, should_stop: Callable[[], bool]) -> tuple[Embedder, int]:
        embedder = self.embedder
        if embedder is None:
            raise InputError("no embedding provider: LODE_EMBEDDER is 'none'")
        through_outages(lambda: embedder.dimension, embedder.model_id,  # may probe the provider
                        self.settings.embedding.outage_wait_seconds, should_stop)
        return embedder, self._claim_model(row, embedder, switch)

    def embedding_counts(self, repo: str) -> BackfillProgress:
        """The repository's embeddings done, pending and failed, with the model it is switching to if any."""
        with self.db.connection() as conn:
            row = self._repos_for(conn, repo)[0]
            return BackfillProgress(**Vectors(conn).counts(row.id, row.next_embedding_model or row.embedding_model))

    def _claim_model(self, row: RepoRow, embedder: Embedder, switch: bool) -> int:
        """Register the provider's model; refuse to mix it into a repository built with another one."""
        with unit_of_work(self.db) as uow:
            model = uow.vectors.register_model(embedder.model_id, embedder.dimension)
            if row.embedding_model in (None, model):
                if row.embedding_model is None:
                    uow.repos.set_embedding_models(row.id, model, None)
                return model
            if row.next_embedding_model == model:
                return model
            if not switch:
                serving = uow.vectors.models()[row.embedding_model][0]
                raise InputError(
                    f"repository {row.name!r} was embedded with {serving}, but the configured model is "
                    f"{embedder.model_id}; run `lode embed --repo {row.name} --switch` to re-embed (the old "
                    "vectors keep serving until the new ones are complete)"
                )
            uow.repos.set_embedding_models(row.id, row.embedding_model, model)
            return model

    def _switch_over(self, repo_id: int, model: int) -> None:
        with unit_of_work(self.db) as uow:
            old = uow.repos.serving_model(repo_id, for_update=True)
            uow.repos.set_embedding_models(repo_id, model, None)
            if old is not None and old != model:
                uow.vectors.delete_repository_model(repo_id, old)

    # ---- queries --------------------------------------------------------------------------------------

    def search(
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
                _check_text(label, value)
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
            repos = self._repos_for(conn, repo)
        settled = not expand or self._settle_graph(repos)
        if not repos:
            return {"query": query, "mode": chosen.value, "degraded": [], "hits": [],
                    **({"files": []} if group == "files" else {})}
        return self.cache.through(
            "search", repos, (query, chosen.value, k, languages, path, kinds, expand, group),
            lambda: self._search(query, repos, chosen, k, filters, expand, group),
            cacheable=lambda result: settled and not result["degraded"],  # pending embeddings keep the generation
        )

    def _search(self, query: str, repos: list[RepoRow], mode: Mode, k: int, filters: Filters,
                expand: bool, group: str) -> dict[str, Any]:
        plan = parse(query) if self.settings.ranking == "on" else None
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
                ordered = ranking.rank(plan, candidates, self._ranking_disabled)
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
        that the query names: definitions of its identifiers (symbol table) and chunks of files it names. One
        statement: a round trip costs more than these index lookups."""
        columns = "c.id, c.repo_id, c.path, c.kind, c.name, c.name_path, c.start_line, c.end_line"
        parts = [f"SELECT {columns}, NULL FROM chunks c WHERE c.id = ANY(%(ids)s)"]
        where, params = filters.sql("c")
        params.update(ids=[cid for cid, _, _ in fused], repos=[r.id for r in repos])
        if plan is not None and plan.names and "definition" not in self._ranking_disabled:
            params.update(names=plan.names, def_kinds=sorted(ranking.DEFINITION_KINDS))
            parts.append(f"""(SELECT {columns}, 'definition' FROM chunks c
                               WHERE lower(c.name) = ANY(%(names)s) AND c.repo_id = ANY(%(repos)s)
                                 AND c.kind = ANY(%(def_kinds)s) AND {where}
                               ORDER BY c.id LIMIT {DEFINITIONS_LOOKED_UP})""")
        named = [f.path for f in plan.frames] + plan.paths if plan is not None else []
        if named and "frame" not in self._ranking_disabled:
            params["paths"] = sorted({tail for p in named for tail in ranking.path_suffixes(p)})
            parts.append(f"""(SELECT {columns}, 'frame' FROM chunks c
                               WHERE c.path = ANY(%(paths)s) AND c.repo_id = ANY(%(repos)s) AND {where}
                               ORDER BY c.id LIMIT {FRAME_CHUNKS_LOOKED_UP})""")
        rows: dict[int, tuple] = {}
        extra: dict[int, tuple[tuple, str]] = {}
        for *row, why in conn.execute(" UNION ALL ".join(parts), params):
            if why is None:
                rows[row[0]] = tuple(row)
            else:
                extra.setdefault(row[0], (tuple(row), why))
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
                    terms = plan.lexical_terms(lexical.document_frequencies(conn, every, [r.id for r in repos]))
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
            embedder = self.embedder
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
        return self.cache.query_vector(embedder.model_id, query, lambda: embedder.embed_query(query))

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
        _check_text("the symbol name", name)
        if not 1 <= limit <= MAX_K:
            raise InputError(f"--limit must be between 1 and {MAX_K}")
        with self.db.read(self.settings.timeouts.symbol_lookup) as conn:
            repo_ids = [r.id for r in self._repos_for(conn, repo)]
            found = Symbols(conn).lookup(name, repo_ids, limit)
            suggestions = [] if found else Symbols(conn).similar_names(name, repo_ids)  # a miss: close names
        return {"query": name, "symbols": [asdict(match) for match in found], "suggestions": suggestions}

    def source(self, repo: str, path: str, start_line: int, end_line: int) -> str:
        """The indexed text of the chunks within lines start_line..end_line of a file, in order; a chunk that
        overlaps an earlier one (a method inside its class's chunk, an overlapping window) is left out."""
        with self.db.connection() as conn:
            row = self._repos_for(conn, repo)[0]
            return "\n".join(Symbols(conn).source(row.id, path, start_line, end_line))

    def file_lines(self, repo: str, path: str, start_line: int = 1, end_line: int | None = None) -> dict[str, Any]:
        """Lines start_line..end_line (1-based, inclusive; to the end when None) of an indexed file.

        Read from the file while its bytes are still those indexed (origin "file": the file's lines, numbered as
        the index numbers them), so that nothing is served that the index does not hold. Otherwise (changed, gone
        or unreadable since) the indexed text of the chunks in that range (origin "index", with the reason): a
        chunk elides the bodies of nested definitions, so those lines are not the file's."""
        _check_text("the path", path)
        if start_line < 1 or (end_line is not None and end_line < start_line):
            raise InputError(f"the lines must satisfy 1 <= start_line <= end_line, not {start_line}..{end_line}")
        with self.db.read() as conn:
            row = self._repos_for(conn, repo)[0]
            indexed = Files(conn).get(row.id, path)
        if indexed is None:
            raise NotFound(f"{path!r} is not an indexed file of repository {repo!r}")
        text, stale = _indexed_file_text(row.root, indexed, self.settings)
        if text is None:
            indexed_text = self.source(repo, path, start_line, end_line or LAST_LINE)
            lines = indexed_text.split("\n") if indexed_text else []
        else:
            every = [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")]
            if start_line > len(every):
                raise InputError(f"{path} has {len(every)} lines; start_line {start_line} is past its end")
            lines = every[start_line - 1:end_line]
        return {"repo": row.name, "path": path, "absolute_path": str(Path(row.root) / path),
                "start_line": start_line, "end_line": start_line + len(lines) - 1,
                "origin": "index" if text is None else "file", "stale": stale, "lines": lines}

    def outline(self, repo: str, path: str = "", limit: int = MAX_OUTLINE) -> dict[str, Any]:
        """The definitions (name, kind, signature, lines) of an indexed file, or of every indexed file below a
        folder ("" for the whole repository), in path and line order; a definition split over several chunks
        (a long class) is one entry."""
        path = path.strip().strip("/")
        _check_text("the path", path)
        if not 1 <= limit <= MAX_OUTLINE:
            raise InputError(f"the limit must be between 1 and {MAX_OUTLINE}")
        with self.db.read(self.settings.timeouts.symbol_lookup) as conn:
            row = self._repos_for(conn, repo)[0]
            entries = Symbols(conn).outline(row.id, path, list(OUTLINE_SKIPPED_KINDS), limit + 1)
            files = Symbols(conn).files_under(row.id, path)
        if not files:
            raise NotFound(f"{path!r} is neither an indexed file nor a folder of indexed files of repository "
                           f"{row.name!r}")
        return {"repo": row.name, "path": path, "files": files, "truncated": len(entries) > limit,
                "symbols": [asdict(entry) for entry in entries[:limit]]}

    def grep(self, pattern: str, *, repo: str | tuple[str, ...] | None = None, regex: bool = False,
             ignore_case: bool = False, path: str | None = None, languages: tuple[str, ...] = (),
             limit: int = 100) -> dict[str, Any]:
        """Lines of the indexed files that match a pattern, exactly or as an RE2 regular expression
        (lode/search/pattern.py), read from the files while their bytes are those indexed."""
        compiled = compile_pattern(pattern, regex=regex, ignore_case=ignore_case)
        if not 1 <= limit <= MAX_GREP_MATCHES:
            raise InputError(f"the limit must be between 1 and {MAX_GREP_MATCHES}")
        for label, values in (("the path glob", (path,) if path else ()), ("the language", languages)):
            for value in values:
                _check_text(label, value)
        filters = Filters(languages=languages, path_glob=path)
        filters.sql("f")  # validates the glob before any database work
        with self.db.read() as conn:
            repos = {r.id: r for r in self._repos_for(conn, repo)}
            indexed = Files(conn).matching(list(repos), filters)

        def texts() -> Iterator[tuple[str, str, str | None]]:
            with ExitStack() as roots:
                trees: dict[int, SourceTree | None] = {}
                for repo_id, indexed_file in indexed:
                    if repo_id not in trees:  # one open root per repository; None when it cannot be opened
                        try:
                            trees[repo_id] = roots.enter_context(SourceTree(repos[repo_id].root))
                        except (OSError, RootUnavailable):
                            trees[repo_id] = None
                    tree = trees[repo_id]
                    text = None if tree is None else _indexed_text_in(tree, indexed_file, self.settings)[0]
                    yield repos[repo_id].name, indexed_file.path, text

        search = PatternSearch(compiled, limit, self.settings.timeouts.pattern_search)
        return {"pattern": pattern, "regex": regex, "ignore_case": ignore_case} | search.run(texts(), len(indexed))

    # ---- graph ----------------------------------------------------------------------------------------

    def graph_neighbours(
        self, direction: str, symbol: str, *, repo: RepoScope = None, depth: int = 1,
        kinds: tuple[str, ...] = ("calls",), min_confidence: float = 0.0, limit: int = 200,
    ) -> dict[str, Any]:
        """Callers (direction "callers") or callees of a symbol, up to `depth` hops."""
        _check_text("the symbol", symbol)
        return self._graph_cached(repo, ("neighbours", direction, symbol, depth, kinds, min_confidence, limit),
                                  lambda: self._graph_neighbours(direction, symbol, repo, depth, kinds,
                                                                 min_confidence, limit))

    def _graph_neighbours(self, direction: str, symbol: str, repo: RepoScope, depth: int, kinds: tuple[str, ...],
                          min_confidence: float, limit: int) -> dict[str, Any]:
        walk = graph.callers if direction == "callers" else graph.callees
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = self._repos_for(conn, repo)
            traversal = walk(conn, [r.id for r in repos], symbol, depth=depth, kinds=kinds,
                             min_confidence=min_confidence, limit=limit)
        names = {r.id: r.name for r in repos}
        return {"symbol": _node_json(traversal.start, names), "direction": direction, "depth": depth,
                "truncated": traversal.truncated, "results": [_hop_json(h, names) for h in traversal.hops]}

    def graph_refs(self, symbol: str, *, repo: RepoScope = None, kinds: tuple[str, ...] = graph.EDGE_KINDS,
                   min_confidence: float = 0.0, limit: int = 200) -> dict[str, Any]:
        """Every use of a symbol (calls, imports, base classes, annotations, decorators), each with its kind."""
        _check_text("the symbol", symbol)
        return self._graph_cached(repo, ("refs", symbol, kinds, min_confidence, limit),
                                  lambda: self._graph_refs(symbol, repo, kinds, min_confidence, limit))

    def _graph_refs(self, symbol: str, repo: RepoScope, kinds: tuple[str, ...], min_confidence: float,
                    limit: int) -> dict[str, Any]:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = self._repos_for(conn, repo)
            found = graph.references(conn, [r.id for r in repos], symbol, kinds=kinds,
                                     min_confidence=min_confidence, limit=limit)
        names = {r.id: r.name for r in repos}
        return {"symbol": _node_json(found.symbol, names), "truncated": found.truncated,
                "refs": [_node_json(use.source, names) | {"kind": use.kind, "confidence": round(use.confidence, 3),
                                                          "evidence": use.evidence} for use in found.uses]}

    def graph_path(self, source: str, target: str, *, repo: RepoScope = None, max_depth: int = 6) -> dict[str, Any]:
        _check_text("the source symbol", source)
        _check_text("the target symbol", target)
        return self._graph_cached(repo, ("path", source, target, max_depth),
                                  lambda: self._graph_path(source, target, repo, max_depth))

    def _graph_path(self, source: str, target: str, repo: RepoScope, max_depth: int) -> dict[str, Any]:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = self._repos_for(conn, repo)
            found = graph.path(conn, [r.id for r in repos], source, target, max_depth=max_depth)
        names = {r.id: r.name for r in repos}
        if found is None:
            return {"from": source, "to": target, "found": False, "path": []}
        return {"from": _node_json(found.start, names), "to": _node_json(found.end, names), "found": True,
                "direction": found.direction, "path": [_hop_json(h, names) for h in found.hops]}

    def graph_stats(self, repo: RepoScope = None) -> dict[str, Any]:
        return self._graph_cached(repo, ("stats",), lambda: self._graph_stats(repo))

    def _graph_stats(self, repo: RepoScope) -> dict[str, Any]:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = self._repos_for(conn, repo)
            result = graph.stats(conn, [r.id for r in repos])
        names = {r.id: r.name for r in repos}
        for entry in result["top_fan_in"] + result["top_fan_out"]:
            entry["symbol"] = _node_json(entry["symbol"], names)
        return result

    def graph_export(self, fmt: str, filters: graph.ExportFilters, repo: RepoScope = None) -> str:
        return self._graph_cached(repo, ("export", fmt, asdict(filters)),
                                  lambda: self._graph_export(fmt, filters, repo))

    def _graph_export(self, fmt: str, filters: graph.ExportFilters, repo: RepoScope) -> str:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = self._repos_for(conn, repo)
            return graph.export(conn, [r.id for r in repos], fmt, filters)

    def _graph_cached(self, repo: RepoScope, params: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self.db.read() as conn:
            repos = self._repos_for(conn, repo)
        settled = self._settle_graph(repos)
        result = self.cache.through("graph", repos, params, compute, cacheable=lambda _: settled)
        if isinstance(result, dict):  # export returns text
            result = {**result, "graph_pending": not settled}  # True: resolution was still running
        return result

    def resolve_graph(self, repo: str, wait: float | None = None) -> bool:
        """Finish a repository's queued graph resolution (see Indexer.resolve_graph); False if an index run or
        another resolution held the repository for longer than `wait` seconds."""
        self._require_graph()
        with self.db.connection() as conn:
            row = self._repos_for(conn, repo)[0]
        return Indexer(self.db, self.settings).resolve_graph(row.id, wait)

    def _settle_graph(self, repos: list[RepoRow]) -> bool:
        """Resolve queued graph work before a graph query, waiting for a running index or resolution up to the
        graph traversal timeout. False when work is still queued: the answer then uses the edges as they are,
        and is not cached (resolution does not bump the generation)."""
        self._require_graph()  # every graph query and search(expand=True) passes here first
        with self.db.read() as conn:
            queued = GraphStore(conn).queued([r.id for r in repos])
        indexer = Indexer(self.db, self.settings)
        resolved = [indexer.resolve_graph(repo_id, wait=self.settings.timeouts.graph_traversal) for repo_id in queued]
        return all(resolved)  # every queued repository is resolved, not only those before the first that times out

    def _require_graph(self) -> None:
        """The one check of LODE_GRAPH for queries: with it off there is no graph to answer from."""
        if not self.settings.graph:
            raise InputError("the code graph is off (LODE_GRAPH=false): set LODE_GRAPH=true and re-index to build it")

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
                    hit["callers"] = [_hop_json(h, names) for h in
                                      graph.callers(conn, repo_ids, hit["name_path"], limit=20).hops]
                    hit["callees"] = [_hop_json(h, names) for h in
                                      graph.callees(conn, repo_ids, hit["name_path"], limit=20).hops]
                except (graph.AmbiguousSymbol, graph.SymbolNotFound):
                    hit["callers"], hit["callees"] = [], []

    # ---- repositories and status ------------------------------------------------------------------------

    def repositories(self) -> list[dict[str, Any]]:
        with self.db.connection() as conn:
            return [_repo_json(row) for row in Repositories(conn).all()]

    def remove_repository(self, name: str) -> None:
        with unit_of_work(self.db) as uow:
            row = uow.repos.get(name, for_update=True)
            if row is None:
                raise NotFound(f"no repository named {name!r}")
            uow.delete_repository(row.id)

    def status(self, repo: RepoScope = None, *, skipped: bool = False) -> dict[str, Any]:
        out = []
        with self.db.connection() as conn:
            models = Vectors(conn).models()

            def model_name(model: int | None) -> str | None:
                return None if model is None else models[model][0]

            for row in self._repos_for(conn, repo):
                files = Files(conn).summary(row.id)
                skipped_rows = SkippedFiles(conn).all(row.id)
                by_reason: dict[str, int] = {}
                for item in skipped_rows:
                    by_reason[item.reason.value] = by_reason.get(item.reason.value, 0) + 1
                entry = _repo_json(row) | {
                    "files": files.files,
                    "files_with_fallback": files.with_fallback,
                    "languages": files.languages,
                    "skipped": by_reason,
                    "empty": row.chunk_count == 0,
                    "last_run": IndexRuns(conn).latest(row.id),
                    "embeddings": Vectors(conn).counts(row.id, row.next_embedding_model or row.embedding_model),
                    "embedding_model": model_name(row.embedding_model),
                    "switching_to": model_name(row.next_embedding_model),
                    "graph": {"enabled": self.settings.graph, **GraphStore(conn).summary(row.id)},
                }
                if skipped:
                    entry["skipped_files"] = [
                        {"path": s.path, "reason": s.reason.value, "detail": s.detail} for s in skipped_rows
                    ]
                out.append(entry)
        return {"repos": out}

    def indexed_files(self, repo: str, limit: int) -> list[FileRow]:
        """A repository's first `limit` indexed files in path order; none when there is no such repository."""
        with self.db.read() as conn:
            row = Repositories(conn).get(repo)
            return [] if row is None else Files(conn).first_by_path(row.id, limit)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _repos_for(self, conn: psycopg.Connection, name: RepoScope) -> list[RepoRow]:
        """Every repository (None), one by name, or those of a tuple of names that exist (an API key's scope)."""
        repos = Repositories(conn)
        if name is None:
            return repos.all()
        if isinstance(name, tuple):
            return [row for row in repos.all() if row.name in name]
        row = repos.get(name)
        if row is None:
            raise unknown_repository(name)
        return [row]

    def _hits(self, conn: psycopg.Connection, ranked: list[tuple[int, float, dict[str, int | None]]],
              repo_names: dict[int, str], query: str) -> list[Hit]:
        if not ranked:
            return []
        rows = conn.execute(
            """SELECT id, repo_id, path, start_line, end_line, kind, name, name_path, language, content
                 FROM chunks WHERE id = ANY(%s)""",
            ([cid for cid, _, _ in ranked],),
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        terms = set(tokenize(query))
        hits = []
        for chunk_id, score, legs in ranked:
            row = by_id.get(chunk_id)
            if row is None:  # replaced between the two statements
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


@contextmanager
def _embedding_errors(repo: str) -> Iterator[None]:
    """A provider that gives up ends the backfill with a LodeError; what is left stays pending."""
    from lode.embedding.base import EmbeddingError

    try:
        yield
    except EmbeddingError as exc:
        record_error("embedding.backfill", exc, severity="error", category="embedding",
                     context={"repo": repo, "stage": "gave up; chunks stay pending"})
        raise LodeError(f"embedding stopped; the chunks left stay pending: {exc}") from exc


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
    _check_text("the query", query)
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


def _check_text(label: str, value: str) -> None:
    """PostgreSQL takes neither NUL nor the lone surrogates that undecodable argv bytes or JSON escapes become."""
    if "\x00" in value:
        raise InputError(f"{label} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{label} is not valid UTF-8") from None


def _default_repo_name(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.") or "root"
    return name[:128]


def _check_repo_name(name: str) -> None:
    if not _REPO_NAME.match(name):
        raise InputError(f"invalid repository name {name!r}: use letters, digits, '.', '_' and '-' (max 128)")


def _indexed_file_text(root: str, indexed: FileRow, settings: Settings) -> tuple[str | None, str | None]:
    """The file's text if its bytes are still those indexed (read below the root without following a symlink),
    else None and why not."""
    try:
        with SourceTree(root) as tree:
            return _indexed_text_in(tree, indexed, settings)
    except (OSError, RootUnavailable) as exc:
        return None, f"the repository root cannot be opened: {exc}"


def _indexed_text_in(tree: SourceTree, indexed: FileRow, settings: Settings) -> tuple[str | None, str | None]:
    """As _indexed_file_text, in a root already open (many files of one repository)."""
    try:
        read = tree.read(Candidate(indexed.path, indexed.size, indexed.mtime_ns), settings)
    except (OSError, RootUnavailable) as exc:
        return None, f"the file cannot be read now: {exc}"
    if isinstance(read, Skipped):
        return None, f"the file cannot be read now: {read.detail or read.reason}"
    if read.content_hash != indexed.content_hash:
        return None, "the file changed since it was indexed"
    return read.text, None


def _repo_json(row: RepoRow) -> dict[str, Any]:
    return {
        "repo": row.name, "root": row.root, "generation": row.generation, "chunks": row.chunk_count,
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
    }


def _node_json(node: graph.GraphNode, repo_names: dict[int, str]) -> dict[str, Any]:
    return {"repo": repo_names.get(node.repo_id), "name_path": node.name_path, "kind": node.kind,
            "path": node.path, "start_line": node.start_line, "end_line": node.end_line,
            "external": node.id is None, "guard": node.guard}


def _hop_json(hop: graph.Hop, repo_names: dict[int, str]) -> dict[str, Any]:
    return _node_json(hop.symbol, repo_names) | {
        "depth": hop.depth, "via": hop.via, "edge": hop.edge_kind, "confidence": round(hop.confidence, 3),
        "evidence": hop.evidence,
    }


def _hit_json(hit: Hit) -> dict[str, Any]:
    out = asdict(hit)
    out.pop("chunk_id")
    return out

"""The core that every interface shares (the CLI, the REST API, MCP): the settings, the database, the cache and the
embedder, and the services over them (lode/services), one per concern:

    lode.indexing    index a directory (and run_index: the work a run leaves)
    lode.embeddings  the embedding backfill and model switches
    lode.search      hybrid search and the symbol table
    lode.graph       callers, callees, references, paths, statistics, exports
    lode.repos       the repositories: list, status, removal
    lode.files       lines, outlines and pattern matches of indexed files
    lode.context     a token-budgeted bundle of code for a change
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from lode import errorlog
from lode.cache import Cache
from lode.config import Settings, get_settings
from lode.services.context import ContextService
from lode.services.embeddings import EmbeddingService
from lode.services.files import FileService
from lode.services.graph import GraphService
from lode.services.indexing import IndexingService
from lode.services.repos import RepositoryService
from lode.services.search import SearchService
from lode.store.db import Database

if TYPE_CHECKING:
    from lode.embedding.base import Embedder

_UNSET = object()


class Lode:
    """`revive_database`: a long-running server (`lode serve`) restarts the embedded PostgreSQL itself when it
    finds it gone; a command fails with DatabaseUnavailable instead, and its next run restarts it."""

    def __init__(self, settings: Settings | None = None, *, revive_database: bool = False) -> None:
        self.settings = settings or get_settings()
        self._revive_database = revive_database
        errorlog.init_sentry(self.settings.sentry_dsn)  # when set, handled errors go to Sentry too
        self._db: Database | None = None
        self._embedder: object = _UNSET
        self.indexing = IndexingService(self)
        self.embeddings = EmbeddingService(self)
        self.search = SearchService(self)
        self.graph = GraphService(self)
        self.repos = RepositoryService(self)
        self.files = FileService(self)
        self.context = ContextService(self)
        self.cache = Cache(self.settings, lambda: self.db, ranking=self.search.fingerprint())

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

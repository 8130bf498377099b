"""This server's row in the servers table (lode/store/servers.py), kept fresh by a daemon thread.

Commands read it to know what is listening: `lode keys rm` warns when the last key goes while a server is bound
beyond loopback. The heartbeat also reaches the database when no request does, so a dead embedded PostgreSQL is
found and restarted by this process (lode/store/db.py) within one interval.
"""

from __future__ import annotations

import threading

import psycopg
from psycopg_pool import PoolTimeout

from lode.api.hosts import is_loopback
from lode.config import Settings
from lode.errors import LodeError
from lode.logs import get_logger
from lode.store.db import Database
from lode.store.servers import Servers

log = get_logger(__name__)


class Presence:
    def __init__(self, db: Database, settings: Settings, host: str, port: int) -> None:
        self.servers = Servers(db)
        self.host, self.port, self.loopback = host, port, is_loopback(host)
        self.interval = settings.server.server_heartbeat_seconds
        self.server_id: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lode-presence", daemon=True)

    def start(self) -> Presence:
        self._register()
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        try:
            if self.server_id is not None:
                self.servers.unregister(self.server_id)
        except (LodeError, psycopg.Error, PoolTimeout) as exc:  # the database is gone: the row goes stale by itself
            log.warning("could not remove this server's row", error=f"{type(exc).__name__}: {exc}")

    def _register(self) -> None:
        self.server_id = self.servers.register(self.host, self.port, self.loopback, self.interval)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.server_id is None or not self.servers.beat(self.server_id):
                    self._register()  # forgotten as dead after an outage: there again
            except (LodeError, psycopg.Error, PoolTimeout) as exc:  # the database is down: beat at the next interval
                log.warning("server heartbeat failed", error=f"{type(exc).__name__}: {exc}")

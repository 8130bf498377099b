"""The servers table: running `lode serve` processes, their bind addresses and heartbeats.

Liveness is a heartbeat judged by the database's clock (so machines with skewed clocks agree), not a pid: a
server killed with SIGKILL, or on a machine that lost power, simply stops beating.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from lode.store.db import Database, scalar

MISSED_BEATS = 3  # a server silent for this many of its intervals is gone


@dataclass(frozen=True, slots=True)
class ServerRow:
    host: str
    port: int
    hostname: str
    pid: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port} (pid {self.pid} on {self.hostname})"


_ALIVE = f"heartbeat_at > now() - make_interval(secs => {MISSED_BEATS} * beat_seconds)"


class Servers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, host: str, port: int, loopback: bool, beat_seconds: float) -> int:
        """Record this process as a server; forget the rows of servers that stopped beating."""
        with self.db.connection() as conn:
            conn.execute(f"DELETE FROM servers WHERE NOT ({_ALIVE})")
            return scalar(conn.execute(
                """INSERT INTO servers (host, port, loopback, hostname, pid, beat_seconds)
                   VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
                (host, port, loopback, socket.gethostname(), os.getpid(), beat_seconds),
            ))

    def beat(self, server_id: int) -> bool:
        """Refresh the heartbeat; False when the row is gone (another process forgot it as dead)."""
        with self.db.connection() as conn:
            return conn.execute("UPDATE servers SET heartbeat_at = now() WHERE id = %s", (server_id,)).rowcount == 1

    def unregister(self, server_id: int) -> None:
        with self.db.connection() as conn:
            conn.execute("DELETE FROM servers WHERE id = %s", (server_id,))

    def exposed(self) -> list[ServerRow]:
        """Live servers bound to an address other than loopback."""
        with self.db.connection() as conn:
            rows = conn.execute(f"SELECT host, port, hostname, pid FROM servers WHERE NOT loopback AND {_ALIVE} "
                                "ORDER BY started_at").fetchall()
        return [ServerRow(*row) for row in rows]

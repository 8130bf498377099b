"""A running `lode serve` that CLI searches hand their query to, so a warm search pays neither for starting the
engine (imports, database pool) nor for loading the embedding model.

A server bound to loopback advertises itself with a file under LODE_HOME/run/ naming its URL, its pid and what it
searches: the database (LODE_DATABASE_URL, or the embedded server of this LODE_HOME) and the embedder
(LODE_EMBEDDER). `lode search` uses the first live one that searches what the command itself would, and searches
locally whenever there is none, the server does not answer, or it answers anything but 200 (the local path then
reports errors in its own words). This module imports only the standard library: it runs before settings are loaded,
which is also why its timeouts are constants here rather than in lode/config.py.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

CONNECT_TIMEOUT = 1.0  # seconds: a loopback server that does not accept within this is not used
ANSWER_TIMEOUT = 60.0  # seconds: above the server's own search timeouts, which degrade legs rather than hang


def home() -> Path:
    """LODE_HOME as lode.config resolves it (the environment, else the per-user data directory)."""
    raw = os.environ.get("LODE_HOME")
    if raw:
        return Path(raw).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("lode", appauthor=False))


def identity(lode_home: Path, database_url: str | None, embedder: str) -> str:
    """What a search runs against: two processes with the same identity return the same hits."""
    target = database_url or f"embedded:{(lode_home / 'pgdata').resolve()}"
    return hashlib.sha256(f"{target}\n{embedder}".encode()).hexdigest()


def _configured(lode_home: Path, name: str, default: str | None) -> str | None:
    """One setting as lode.config reads it: LODE_<NAME>, then config.toml under LODE_HOME, then the default."""
    raw = os.environ.get(f"LODE_{name.upper()}")
    if raw is not None:
        return raw
    try:
        with open(lode_home / "config.toml", "rb") as fh:
            value = tomllib.load(fh).get(name)
    except (OSError, tomllib.TOMLDecodeError):
        return default
    return str(value) if value is not None else default


def _run_dir(lode_home: Path) -> Path:
    return lode_home / "run"


def advertise(lode_home: Path, database_url: str | None, embedder: str, port: int) -> Path:
    """Announce a loopback server of this process; returns the file to withdraw() at shutdown."""
    run = _run_dir(lode_home)
    run.mkdir(parents=True, exist_ok=True)
    path = run / f"serve-{os.getpid()}-{port}.json"
    path.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid(),
                                "identity": identity(lode_home, database_url, embedder)}))
    return path


def withdraw(path: Path) -> None:
    path.unlink(missing_ok=True)


def find() -> str | None:
    """The URL of a live advertised server that searches what this process would, or None."""
    lode_home = home()
    try:
        entries = sorted(_run_dir(lode_home).glob("serve-*.json"))
    except OSError:
        return None
    wanted = identity(lode_home, _configured(lode_home, "database_url", None),
                      _configured(lode_home, "embedder", "local") or "local")
    for entry in entries:
        try:
            advert = json.loads(entry.read_text())
            os.kill(int(advert["pid"]), 0)  # a server killed with SIGKILL leaves its file behind
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
            continue
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if advert.get("identity") == wanted and str(advert.get("url", "")).startswith("http://127.0.0.1:"):
            return str(advert["url"])
    return None


def search(url: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """GET /v1/search on the server at `url`; the result in the CLI's --json shape, or None when the server did
    not answer 200 (unreachable, a key required, bad input: the caller then searches locally)."""
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=CONNECT_TIMEOUT)
    try:
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(ANSWER_TIMEOUT)
        connection.request("GET", f"/v1/search?{query}", headers={"Accept": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            return None
        result: dict[str, Any] = json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
    # the REST page's extras are not part of the CLI's document, nor the nulls its response model fills in for
    # optional fields the engine leaves out
    result.pop("offset", None)
    result.pop("next_offset", None)
    _drop_nulls(result, ("files", "query_kind"))
    grouped = [hit for found in result.get("files") or [] for hit in found.get("hits", [])]
    for hit in [*result.get("hits", []), *grouped]:
        _drop_nulls(hit, ("callers", "callees"))
        _drop_nulls(hit.get("legs") or {}, ("fused", "priors", "injected"))
    return result


def _drop_nulls(document: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in document and document[key] is None:
            del document[key]

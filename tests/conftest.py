"""Shared fixtures: one real embedded PostgreSQL for the whole session, under a temporary LODE_HOME."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lode.config import Settings
from lode.engine import Lode


@pytest.fixture(scope="session")
def lode_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("lode-home")
    os.environ["LODE_HOME"] = str(home)
    os.environ["LODE_EMBEDDER"] = "none"
    os.environ.pop("LODE_DATABASE_URL", None)
    return home


@pytest.fixture(scope="session")
def lode(lode_home: Path) -> Lode:
    engine = Lode(Settings(home=lode_home, embedder="none"))
    _ = engine.db  # start the embedded server once; CLI subprocesses attach to it
    yield engine
    engine.close()


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers():
    """Breakers are process-wide: a test's failures must not leave one open for the next test."""
    from lode.resilience import reset_breakers

    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def stub() -> Iterator[str]:
    """The URL of a stub embedding service in its own process, killed after the test."""
    from tests.support.embedding_stub import start_stub

    proc, url = start_stub()
    yield url
    proc.kill()
    proc.wait()


@pytest.fixture
def repo_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def no_keys(lode: Lode) -> Iterator[None]:
    """Every test here starts and ends without API keys (other tests rely on the open local mode)."""
    with lode.db.connection() as conn:
        conn.execute("DELETE FROM api_keys")
    yield
    with lode.db.connection() as conn:
        conn.execute("DELETE FROM api_keys")

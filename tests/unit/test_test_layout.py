"""The layout of tests/: every test module sits in the folder of its kind, the unit tests use no database or
process, and test modules share code through tests.support and conftest fixtures only, never through each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# unit: no database, server or process; integration: the session PostgreSQL (or Redis, the ONNX model, a stub
# service) in the test's process; e2e: real lode processes; fault and scale: the fault-injection and load runs
KINDS = ("unit", "integration", "e2e", "fault", "scale")
# fixtures that start or reach a database, a server or a process (tests/conftest.py and the modules' own)
SERVICE_FIXTURES = frozenset({"lode", "lode_home", "no_keys", "stub", "served", "server", "http_server", "browser",
                              "redis_server", "redis_url"})
# modules that start processes or servers (tests.support.trees runs git alone, which a unit test may)
PROCESS_MODULES = frozenset({"subprocess", "multiprocessing", "tests.support.cli", "tests.support.embedding_stub",
                             "tests.support.queue_worker", "tests.support.serve_process", "tests.support.redis_server",
                             "tests.support.netns", "tests.support.resilience_stubs", "tests.support.faultlib"})


def _modules(tests: Path) -> Iterator[Path]:
    return (path for path in sorted(tests.rglob("*.py")) if "fixtures" not in path.relative_to(tests).parts)


def misplaced_test_modules(tests: Path) -> list[str]:
    """Test modules outside tests/<kind>/."""
    return [str(path.relative_to(tests)) for path in _modules(tests)
            if path.name.startswith("test_") and path.relative_to(tests).parts[0] not in KINDS]


def service_fixtures_in_unit_tests(tests: Path) -> list[str]:
    """`module::function(fixture)` for each test or fixture under tests/unit that asks for a service fixture."""
    found = []
    for path in _modules(tests / "unit"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                found += [f"{path.name}::{node.name}({arg.arg})" for arg in arguments if arg.arg in SERVICE_FIXTURES]
    return found


def _imported_modules(path: Path) -> Iterator[str]:
    """Every module `path` imports, relative ones with their leading dots."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def process_imports_in_unit_tests(tests: Path) -> list[str]:
    """`module: imported` for each module under tests/unit that imports a way to start a process or server."""
    return [f"{path.name}: {module}" for path in _modules(tests / "unit") for module in _imported_modules(path)
            if module in PROCESS_MODULES]


def _is_shared_code(module: str, local_names: frozenset[str]) -> bool:
    """Whether an absolute import of `module` from tests/ takes code a test module may share."""
    parts = module.split(".")
    if parts[0] == "tests":
        return parts[:2] == ["tests", "support"] and not any(p.startswith("test_") for p in parts)
    return parts[0] not in local_names  # a bare name of a file under tests/ is a folder on sys.path, not a package


def imports_between_test_modules(tests: Path) -> list[str]:
    """`module: imported` for each import of a test module, of conftest, or of tests/ code outside tests.support."""
    local_names = frozenset(path.stem for path in _modules(tests)) | {"conftest"}
    return [f"{path.relative_to(tests)}: {module}" for path in _modules(tests) for module in _imported_modules(path)
            if module.startswith(".") or not _is_shared_code(module, local_names)]


def test_every_test_module_sits_in_the_folder_of_its_kind() -> None:
    assert misplaced_test_modules(TESTS) == []


def test_unit_tests_ask_for_no_database_server_or_process() -> None:
    assert service_fixtures_in_unit_tests(TESTS) == []
    assert process_imports_in_unit_tests(TESTS) == []


def test_test_modules_share_code_only_through_tests_support() -> None:
    assert imports_between_test_modules(TESTS) == []


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A tests/ tree with one breach of each rule, next to modules that keep them."""
    files = {
        "conftest.py": "import pytest\n",
        "support/helpers.py": "import os\n",
        "test_flat.py": "def test_flat():\n    pass\n",
        "unit/test_pure.py": "from tests.support.helpers import os\n\n\ndef test_pure(tmp_path):\n    pass\n",
        "unit/test_db.py": "import pytest\nimport subprocess\nfrom tests.support.cli import run_cli\n\n\n"
                           "@pytest.fixture\ndef repo(lode):\n    pass\n\n\nasync def test_db(*, stub):\n    pass\n",
        "integration/test_uses_others.py": "from tests.unit.test_pure import test_pure\nfrom conftest import pytest\n"
                                           "from helpers import os\nfrom .test_db import repo\n\n\n"
                                           "def test_db(lode):\n    pass\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_checks_find_each_breach_in_a_sample(sample: Path) -> None:
    assert misplaced_test_modules(sample) == ["test_flat.py"]
    assert service_fixtures_in_unit_tests(sample) == ["test_db.py::repo(lode)", "test_db.py::test_db(stub)"]
    assert process_imports_in_unit_tests(sample) == ["test_db.py: subprocess", "test_db.py: tests.support.cli"]
    assert imports_between_test_modules(sample) == [
        "integration/test_uses_others.py: tests.unit.test_pure", "integration/test_uses_others.py: conftest",
        "integration/test_uses_others.py: helpers", "integration/test_uses_others.py: .test_db"]

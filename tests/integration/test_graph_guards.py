"""Every definition at module or class level has a node, whatever statement encloses it (if/try/with), with its
guard: checked by walking the AST of real standard library modules, and on the guards' wording."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

import pytest
from tests.support.graph_repos import GraphRepo, file_facts

from lode.engine import Lode

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# modules with platform branches, fallback imports, version checks and definitions under try/with
MODULES = ["os.py", "subprocess.py", "shutil.py", "tempfile.py", "locale.py", "socket.py", "ntpath.py", "pstats.py",
           "selectors.py", "abc.py", "socketserver.py", "webbrowser.py", "threading.py"]
_GUARDS = (ast.If, ast.Try, ast.With, ast.TryStar)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _definitions(body: list[ast.stmt], prefix: str, guarded: bool) -> list[tuple[str, int, bool]]:
    """(name path, line of `def`/`class`, under a guard) of every definition Python may create at this level."""
    found: list[tuple[str, int, bool]] = []
    for statement in body:
        if isinstance(statement, _DEFINITIONS):
            name_path = f"{prefix}.{statement.name}"
            found.append((name_path, statement.lineno, guarded))
            if isinstance(statement, ast.ClassDef):
                found += _definitions(statement.body, name_path, guarded)
        elif isinstance(statement, _GUARDS):
            blocks = [statement.body, getattr(statement, "orelse", []), getattr(statement, "finalbody", [])]
            blocks += [handler.body for handler in getattr(statement, "handlers", [])]
            for block in blocks:
                found += _definitions(block, prefix, True)
    return found


@pytest.mark.parametrize("relative", MODULES)
def test_every_module_and_class_level_definition_has_a_node(relative: str) -> None:
    text = (STDLIB / relative).read_text()
    module = relative.removesuffix(".py").replace("/", ".")
    expected = _definitions(ast.parse(text).body, module, False)
    assert any(guarded for _, _, guarded in expected)
    paths = frozenset({relative})
    nodes = file_facts(relative, text, paths).symbols[1:]
    for name_path, line, guarded in expected:
        holding = [n for n in nodes if n.name_path == name_path and n.start_line <= line <= n.end_line]
        assert holding, f"{relative}:{line} {name_path} has no node"
        assert all((n.guard is not None) == guarded for n in holding), (name_path, line, [n.guard for n in holding])
    assert {n.name_path for n in nodes} == {name_path for name_path, _, _ in expected}


GUARDED = '''import sys
if sys.platform == "win32":
    def proxy_bypass(host):
        return _registry(host)
    def _registry(host):
        pass
else:
    def proxy_bypass(host):
        return _environment(host)
    def _environment(host):
        pass
try:
    from _speedups import escape
except ImportError:
    def escape(s):
        pass
if sys.version_info >= (3, 11):
    import tomllib
class Loader:
    if TYPE_CHECKING:
        def hint(self): ...
def use():
    proxy_bypass("h")
    escape("s")
'''


def test_guards_are_recorded_and_both_variants_are_callees(lode: Lode, repo_name: str) -> None:
    nodes = {(s.name_path, s.guard) for s in file_facts("net.py", GUARDED, frozenset({"net.py"})).symbols}
    assert {
        ("net.proxy_bypass", 'platform: sys.platform == "win32"'),
        ("net.proxy_bypass", 'platform: else of sys.platform == "win32"'),
        ("net._registry", 'platform: sys.platform == "win32"'),
        ("net.escape", "fallback import: except ImportError"),
        ("net.Loader.hint", "type checking: TYPE_CHECKING"),
        ("net.use", None),
    } <= nodes
    repo = GraphRepo(lode, repo_name)
    repo.apply({"net.py": GUARDED})
    calls = {(source, target) for source, target, _, _ in repo.edges(("calls",))}
    assert {("net.proxy_bypass", "net._registry"), ("net.proxy_bypass", "net._environment"),
            ("net.use", "net.proxy_bypass"), ("net.use", "net.escape")} <= calls
    callees = lode.graph.neighbours("callees", "net.use", repo=repo_name)["results"]
    assert sorted(hop["guard"] or "" for hop in callees if hop["name_path"] == "net.proxy_bypass") == [
        'platform: else of sys.platform == "win32"', 'platform: sys.platform == "win32"']

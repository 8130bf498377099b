"""Module names on real repository layouts (src/, PEP 420 namespace folders, projects inside a repository,
script folders), checked end to end: the indexer names the symbols, the resolver links the imports."""

from __future__ import annotations

from pathlib import Path

from tests.support.graph_repos import GraphRepo

from lode.engine import Lode

# a web framework's layout: src/, a package whose sansio/ folder has no __init__.py, relative imports from it,
# an application class whose base lives in that folder, and a scripts/ folder importing its neighbours
FRAMEWORK = {
    "pyproject.toml": "[project]\nname = 'web'\n",
    "src/web/__init__.py": "from .app import Web as Web\n",
    "src/web/app.py": (
        "from .sansio.app import App\n"
        "class Web(App):\n"
        "    def run(self):\n"
        "        self.make_response()\n"
    ),
    "src/web/sansio/app.py": (
        "from ..helpers import get_debug_flag\n"
        "from .scaffold import Scaffold\n"
        "class App(Scaffold):\n"
        "    def make_response(self):\n"
        "        get_debug_flag()\n"
        "        self.route()\n"
    ),
    "src/web/sansio/scaffold.py": "class Scaffold:\n    def route(self):\n        pass\n",
    "src/web/helpers.py": "def get_debug_flag():\n    pass\n",
    "scripts/release.py": "import common\nfrom common import bump\ndef main():\n    bump()\n    common.bump()\n",
    "scripts/common.py": "def bump():\n    pass\n",
    # a namespace package (no google/__init__.py) next to it
    "google/cloud/storage/__init__.py": "from google.cloud.storage.blob import Blob\n",
    "google/cloud/storage/blob.py": "class Blob:\n    def upload(self):\n        pass\n",
    "google/cloud/storage/client.py": (
        "from google.cloud.storage import Blob\ndef put():\n    Blob().upload()\n"
    ),
}


def test_namespace_folders_and_src_layouts_resolve_like_the_import_system(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply(FRAMEWORK)
    edges = {(source, target, kind) for source, target, kind, _ in repo.edges()}
    assert {
        ("web.sansio.app", "web.helpers.get_debug_flag", "imports"),
        ("web.sansio.app.App", "web.sansio.scaffold.Scaffold", "inherits"),
        ("web.app.Web", "web.sansio.app.App", "inherits"),
        ("web.app.Web.run", "web.sansio.app.App.make_response", "calls"),  # inherited through the namespace folder
        ("web.sansio.app.App.make_response", "web.helpers.get_debug_flag", "calls"),
        ("web.sansio.app.App.make_response", "web.sansio.scaffold.Scaffold.route", "calls"),
        ("scripts.release.main", "scripts.common.bump", "calls"),  # a script imports its neighbours
        ("google.cloud.storage.client.put", "google.cloud.storage.blob.Blob.upload", "calls"),
    } <= edges
    assert ("scripts.release", "scripts.common", "imports") in edges
    assert not [edge for edge in edges if edge[1].startswith("external:") and "get_debug_flag" in edge[1]]


def test_an_absolute_import_is_never_read_as_a_neighbour_inside_a_regular_package(lode: Lode, repo_name: str) -> None:
    """`import json` in a package module is the standard library's json, not the package's json.py."""
    repo = GraphRepo(lode, repo_name)
    repo.apply({
        "pkg/__init__.py": "",
        "pkg/json.py": "def dumps():\n    pass\n",
        "pkg/tool.py": "import json\ndef f():\n    json.dumps()\n",
    })
    calls = {(source, target) for source, target, kind, _ in repo.edges(("calls",))}
    assert calls == {("pkg.tool.f", "external:json.dumps")}


def test_symbols_are_found_by_their_import_name_under_a_namespace_folder(
    lode: Lode, tmp_path: Path, repo_name: str
) -> None:
    for path, text in FRAMEWORK.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    lode.indexing.index(tmp_path, repo_name)
    found = lode.search.symbols("web.sansio.app.App", repo=repo_name)["symbols"]
    assert [(s["name_path"], s["path"]) for s in found] == [("web.sansio.app.App", "src/web/sansio/app.py")]
    callees = lode.graph.neighbours("callees", "web.app.Web.run", repo=repo_name)
    assert [hop["name_path"] for hop in callees["results"]] == ["web.sansio.app.App.make_response"]


def test_a_new_project_root_renames_the_modules_of_unchanged_files(
    lode: Lode, tmp_path: Path, repo_name: str
) -> None:
    """Module names depend on other files (pyproject.toml, src/, __init__.py): when one appears, the files it
    renames are indexed again though they did not change."""
    (tmp_path / "libs" / "acme" / "acme").mkdir(parents=True)
    (tmp_path / "libs" / "acme" / "acme" / "core.py").write_text("def run():\n    pass\n")
    (tmp_path / "app.py").write_text("from acme.core import run\ndef main():\n    run()\n")
    lode.indexing.index(tmp_path, repo_name)
    assert ([s["name_path"] for s in lode.search.symbols("run", repo=repo_name)["symbols"]]
            == ["libs.acme.acme.core.run"])
    (tmp_path / "libs" / "acme" / "pyproject.toml").write_text("[project]\nname = 'acme'\n")
    lode.indexing.index(tmp_path, repo_name)
    assert [s["name_path"] for s in lode.search.symbols("run", repo=repo_name)["symbols"]] == ["acme.core.run"]
    callers = lode.graph.neighbours("callers", "acme.core.run", repo=repo_name)["results"]
    assert [hop["name_path"] for hop in callers] == ["app.main"]

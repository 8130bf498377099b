"""Resolution against a real PostgreSQL: the fixture repositories' hand-written call graphs, and each rule."""

from __future__ import annotations

import pytest
from tests.support.graph_repos import FIXTURES, GraphRepo, in_repo_calls, precision_recall, truth

from lode.engine import Lode


def build(lode: Lode, repo_name: str, files: dict[str, str]) -> GraphRepo:
    repo = GraphRepo(lode, repo_name)
    repo.apply(files)
    return repo


def edge_set(repo: GraphRepo, kind: str = "calls") -> set[tuple[str, str]]:
    return {(source, target) for source, target, _, _ in repo.edges((kind,))}


@pytest.mark.parametrize(("fixture", "min_precision", "min_recall"),
                         [("pyshop", 0.9, 0.8), ("tsshop", 0.95, 0.85), ("jsshop", 0.95, 0.85), ("goshop", 0.95, 0.85),
                          ("javashop", 0.95, 0.85)])
def test_fixture_call_graphs_match_their_hand_written_truth(
    lode: Lode, repo_name: str, fixture: str, min_precision: float, min_recall: float
) -> None:
    root = FIXTURES / fixture
    repo = GraphRepo(lode, repo_name).load(root)
    found, expected = in_repo_calls(repo), truth(root)
    precision, recall = precision_recall(found, expected)
    assert precision >= min_precision and recall >= min_recall, (precision, recall, found - expected, expected - found)


def test_every_edge_has_a_confidence_and_evidence(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name).load(FIXTURES / "pyshop")
    with lode.db.connection() as conn:
        bad = conn.execute(
            """SELECT count(*) FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                WHERE e.repo_id = %s AND (e.confidence <= 0 OR e.confidence > 1 OR e.line < s.start_line
                      OR e.line > s.end_line OR (e.target_id IS NULL) = (e.target_name IS NULL))""",
            (repo.repo_id,),
        ).fetchone()[0]
    assert bad == 0
    assert ("app.main", "app.report", "calls", "app.py:14") in repo.edges()


def test_python_import_forms(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "pkg/__init__.py": "from .core import helper as exported\n",
            "pkg/core.py": "def helper():\n    pass\n\nclass Tool:\n    def use(self):\n        pass\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/deep.py": (
                "import pkg.core\n"
                "import pkg.core as core_alias\n"
                "from pkg.core import helper as h, Tool\n"
                "from .. import core\n"
                "from ..core import *\n"
                "from pkg import exported\n"
                "def run():\n"
                "    pkg.core.helper()\n"
                "    core_alias.helper()\n"
                "    h()\n"
                "    core.Tool().use()\n"
                "    Tool.use(None)\n"
                "    helper()\n"
                "    exported()\n"
            ),
        },
    )
    calls = [(source, target, line) for source, target, _, line in repo.edges(("calls",))]
    helper = "pkg.core.helper"
    for line in (8, 9, 10, 13, 14):
        assert ("pkg.sub.deep.run", helper, f"pkg/sub/deep.py:{line}") in calls
    assert ("pkg.sub.deep.run", "pkg.core.Tool", "pkg/sub/deep.py:11") in calls
    assert ("pkg.sub.deep.run", "pkg.core.Tool.use", "pkg/sub/deep.py:12") in calls
    assert edge_set(repo, "imports") >= {
        ("pkg.sub.deep", "pkg.core"),
        ("pkg.sub.deep", helper),
        ("pkg.sub.deep", "pkg.core.Tool"),
        ("pkg", helper),
    }


def test_star_imports_chain_through_modules_and_missing_targets_stay_cheap(lode: Lode, repo_name: str) -> None:
    """Stars re-export through modules in the tree; stars of modules outside it (extension modules, partial
    trees) cost nothing: once, 10 such stars tried every order of them and never finished."""
    missing = "".join(f"from .ext{i} import *\n" for i in range(12))
    repo = build(
        lode,
        repo_name,
        {
            "pkg/__init__.py": missing + "from .api import *\n",
            "pkg/api.py": "from .impl import *\n",
            "pkg/impl.py": "def thing():\n    pass\n",
            "use.py": "import pkg\n\ndef go():\n    pkg.thing()\n    pkg.nowhere()\n",
        },
    )
    assert edge_set(repo) == {("use.go", "pkg.impl.thing"), ("use.go", "external:pkg.nowhere")}


def test_python_methods_resolve_through_the_class_then_its_bases(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "base.py": "class Base:\n    def shared(self):\n        pass\n    def over(self):\n        pass\n",
            "mid.py": "from base import Base\n\nclass Mid(Base):\n    def over(self):\n        pass\n",
            "leaf.py": (
                "import mid\n\n"
                "class Leaf(mid.Mid):\n"
                "    def go(self):\n"
                "        self.shared()\n"
                "        self.over()\n"
                "        super().over()\n"
                "        self.missing()\n"
                "    @classmethod\n"
                "    def make(cls):\n"
                "        return cls.go(None)\n"
            ),
        },
    )
    calls = edge_set(repo)
    assert ("leaf.Leaf.go", "base.Base.shared") in calls
    assert ("leaf.Leaf.go", "mid.Mid.over") in calls  # the nearest definition wins
    assert ("leaf.Leaf.go", "base.Base.over") not in calls
    assert ("leaf.Leaf.go", "external:self.missing") in calls
    assert ("leaf.Leaf.make", "leaf.Leaf.go") in calls
    assert edge_set(repo, "inherits") == {("mid.Mid", "base.Base"), ("leaf.Leaf", "mid.Mid")}
    confidence = repo.confidences()
    assert confidence[("leaf.Leaf.make", "leaf.Leaf.go", "calls")] == pytest.approx(0.9)  # own class
    assert confidence[("leaf.Leaf.go", "base.Base.shared", "calls")] == pytest.approx(0.9 * 0.9 * 0.9)


def test_python_receivers_typed_by_assignment_annotation_and_attribute(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "shapes.py": "class Circle:\n    def area(self):\n        pass\n",
            "use.py": (
                "from shapes import Circle\n"
                "DEFAULT = Circle()\n"
                "class Holder:\n"
                "    kept: Circle\n"
                "    def __init__(self):\n"
                "        self.c = Circle()\n"
                "    def go(self, given: Circle):\n"
                "        self.c.area()\n"
                "        self.kept.area()\n"
                "        given.area()\n"
                "        local = Circle()\n"
                "        local.area()\n"
                "        DEFAULT.area()\n"
                "        Circle().area()\n"
                "        unknown.area()\n"
            ),
        },
    )
    calls = [(source, target, line) for source, target, _, line in repo.edges(("calls",))]
    for line in (8, 9, 10, 12, 13, 14):
        assert ("use.Holder.go", "shapes.Circle.area", f"use.py:{line}") in calls
    assert ("use.Holder.go", "external:unknown.area", "use.py:15") in calls


def test_python_builtins_are_dropped_and_misses_go_external_with_the_import_expanded(
    lode: Lode, repo_name: str
) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "m.py": (
                "import numpy as np\n"
                "from os import path as p\n"
                "def len(x):\n"
                "    return 0\n"
                "def f(items):\n"
                "    print(sorted(items))\n"
                "    dict.fromkeys(items)\n"
                "    len(items)\n"
                "    np.zeros(3)\n"
                "    p.join('a')\n"
                "    mystery()\n"
            ),
        },
    )
    assert edge_set(repo) == {
        ("m.f", "m.len"),
        ("m.f", "external:numpy.zeros"),
        ("m.f", "external:os.path.join"),
        ("m.f", "external:mystery"),
    }


def test_an_ambiguous_call_keeps_every_candidate_with_the_confidence_split(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "a/setup.py": "",
            "a/tool.py": "def run():\n    pass\n",
            "b/setup.py": "",
            "b/tool.py": "def run():\n    pass\n",  # the same module name `tool` (two projects' roots)
            "main.py": "import tool\n\ndef go():\n    tool.run()\n",
        },
    )
    edges = [(s, t, k, e) for s, t, k, e in repo.edges(("calls",)) if s == "main.go"]
    assert len(edges) == 2 and {t for _, t, _, _ in edges} == {"tool.run"}
    assert set(repo.confidences().values()) >= {0.5}
    with lode.db.connection() as conn:
        shares = conn.execute(
            "SELECT array_agg(confidence) FROM graph_edges WHERE repo_id = %s AND line = 4 AND kind = 'calls'",
            (repo.repo_id,),
        ).fetchone()[0]
    assert sorted(shares) == [0.5, 0.5]


def test_javascript_module_forms(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "lib/index.js": 'export { helper as h } from "./helper";\nexport * from "./more";\n',
            "lib/helper.js": "export function helper() {}\nexport default function main() {}\n",
            "lib/more.js": (
                "export class Widget { draw() {} }\nconst internal = () => 1;\nexport { internal as exposed };\n"
            ),
            "app.mjs": (
                'import main, { helper } from "./lib/helper.js";\n'
                'import * as lib from "./lib";\n'
                'import { h, Widget } from "./lib";\n'
                'import React from "react";\n'
                'const more = require("./lib/more");\n'
                'const { helper: viaRequire } = require("./lib/helper");\n'
                "function go() {\n"
                "  main(); helper(); lib.h(); h(); new Widget().draw(); more.exposed(); viaRequire();\n"
                "  const w = new Widget(); w.draw(); lib.Widget(); React.render();\n"
                "}\n"
            ),
        },
    )
    calls = edge_set(repo)
    assert {
        ("app.go", target)
        for target in (
            "lib.helper.main",
            "lib.helper.helper",
            "lib.more.Widget",
            "lib.more.Widget.draw",
            "lib.more.internal",
        )
    } <= calls
    assert ("app.go", "external:react.default.render") in calls
    with lode.db.connection() as conn:
        counts = dict(
            conn.execute(
                """SELECT t.name_path, count(*) FROM graph_edges e JOIN graph_nodes t ON t.id = e.target_id
                WHERE e.repo_id = %s AND e.kind = 'calls' GROUP BY 1""",
                (repo.repo_id,),
            ).fetchall()
        )
    assert counts["lib.helper.helper"] == 4  # helper(), lib.h(), h(), viaRequire()
    assert counts["lib.more.Widget.draw"] == 2


def test_go_resolves_package_qualified_names_by_import_path(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "util/strings.go": "package util\n\nfunc Trim() {}\n\ntype Buf struct{}\n\nfunc (b *Buf) Reset() {}\n",
            "other/util/strings.go": "package util\n\nfunc Trim() {}\n",
            "server/server.go": (
                'package server\n\nimport (\n  "example.com/proj/util"\n  "fmt"\n)\n\n'
                "type Server struct{ util.Buf }\n\n"
                "func (s *Server) Serve() {\n"
                "  util.Trim(); s.Reset(); fmt.Println(); helper(); b := &util.Buf{}; b.Reset()\n}\n"
            ),
            "server/helper.go": "package server\n\nfunc helper() {}\n",
        },
    )
    calls = edge_set(repo)
    assert {("server.Server.Serve", t) for t in ("util.Trim", "util.Buf.Reset", "server.helper")} <= calls
    assert ("server.Server.Serve", "external:fmt.Println") in calls
    with lode.db.connection() as conn:
        trim_paths = {
            row[0]
            for row in conn.execute(
                """SELECT t.path FROM graph_edges e JOIN graph_nodes t ON t.id = e.target_id
                WHERE e.repo_id = %s AND t.name_path = 'util.Trim'""",
                (repo.repo_id,),
            )
        }
    assert trim_paths == {"util/strings.go"}  # not other/util: the directory must end the import path
    assert ("server.Server", "util.Buf") in edge_set(repo, "inherits")


def test_java_resolves_imports_same_package_and_implicit_this(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "src/com/acme/util/Strings.java": (
                "package com.acme.util;\npublic class Strings { static void trim() {} }\n"
            ),
            "src/com/acme/Base.java": "package com.acme;\npublic class Base { void shared() {} }\n",
            "src/com/acme/App.java": (
                "package com.acme;\n"
                "import com.acme.util.Strings;\n"
                "public class App extends Base {\n"
                "  void run() { Strings.trim(); shared(); this.own(); Base b = new Base(); b.shared(); }\n"
                "  void own() {}\n"
                "}\n"
            ),
        },
    )
    calls = edge_set(repo)
    assert {
        ("com.acme.App.run", t)
        for t in (
            "com.acme.util.Strings.trim",
            "com.acme.Base.shared",
            "com.acme.App.own",
            "com.acme.Base",
        )
    } <= calls
    assert ("com.acme.App", "com.acme.Base") in edge_set(repo, "inherits")


def test_other_languages_resolve_by_name_with_lower_confidence(lode: Lode, repo_name: str) -> None:
    repo = build(
        lode,
        repo_name,
        {
            "src/a.c": "int helper(void) { return 1; }\nint twice(void) { return helper() + helper(); }\n",
            "src/b.c": "int helper(void) { return 2; }\nint main(void) { return helper() + other(); }\n",
            "src/c.c": "int user(void) { return twice(); }\n",
        },
    )
    with lode.db.connection() as conn:
        rows = conn.execute(
            """SELECT s.path, t.path, e.confidence FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                 JOIN graph_nodes t ON t.id = e.target_id WHERE e.repo_id = %s AND e.kind = 'calls'""",
            (repo.repo_id,),
        ).fetchall()
    assert ("src/b.c", "src/b.c", 0.5) in rows and ("src/b.c", "src/a.c", 0.5) not in rows  # same file first
    assert ("src/c.c", "src/a.c", 0.5) in rows
    assert ("src.b.main", "external:other") in edge_set(repo)


def test_java_overloads_are_nodes_of_their_own_and_calls_pick_by_argument_count(lode: Lode, repo_name: str) -> None:
    from lode.store.graph_queries import AmbiguousSymbol

    repo = build(lode, repo_name, {
        "src/com/acme/Repo.java": (
            "package com.acme;\n"
            "public class Repo {\n"
            "    void save(String key) {}\n"
            "    void save(int id) {}\n"
            "    void save(String key, int version) {}\n"
            "    void save(String key, int version, String... tags) {}\n"
            "}\n"
        ),
        "src/com/acme/App.java": (
            "package com.acme;\n"  # 1
            "public class App {\n"  # 2
            "    private Repo repo;\n"  # 3
            "    void run() {\n"  # 4
            "        repo.save(\"k\", 1);\n"  # 5: fixed arity beats varargs
            "        this.repo.save(\"k\", 1, \"a\", \"b\");\n"  # 6: varargs only
            "        repo.save(\"k\");\n"  # 7: two overloads take one argument: split
            "    }\n"
            "}\n"
        ),
    })
    calls = {(target, int(evidence.rpartition(":")[2])): confidence
             for source, target, kind, evidence, confidence in repo.snapshot()
             if kind == "calls" and source == "com.acme.App.run"}
    assert calls == {
        ("com.acme.Repo.save(String,int)", 5): pytest.approx(0.9 * 0.8),  # the field (implicit this), typed
        ("com.acme.Repo.save(String,int,String[])", 6): pytest.approx(0.9 * 0.8),
        ("com.acme.Repo.save(String)", 7): pytest.approx(0.9 * 0.8 / 2),
        ("com.acme.Repo.save(int)", 7): pytest.approx(0.9 * 0.8 / 2),
    }
    # the plain name lists the overloads; the full one picks one
    with pytest.raises(AmbiguousSymbol, match=r"Repo\.save\(String\)"):
        lode.graph.neighbours("callers", "Repo.save", repo=repo_name)
    callers = lode.graph.neighbours("callers", "Repo.save(String,int)", repo=repo_name)["results"]
    assert [hit["name_path"] for hit in callers] == ["com.acme.App.run"]


def test_typescript_path_aliases_follow_the_nearest_tsconfig(lode: Lode, repo_name: str) -> None:
    config = ('{\n  // comments and trailing commas\n'
              '  "compilerOptions": {"baseUrl": "%s", "paths": {"@lib/*": ["%s"],}},\n}\n')
    repo = build(lode, repo_name, {
        "tsconfig.json": config % (".", "lib/*"),
        "lib/repo.ts": ("export class Repo {\n  save(): void {}\n}\n"
                        "export function make(): Repo { return new Repo(); }\n"),
        "web/tsconfig.json": config % ("src", "shared/*"),
        "web/src/shared/repo.ts": "export class Repo {\n  save(): void {}\n}\n",
        "app/main.ts": (
            'import { Repo, make } from "@lib/repo";\n'
            'import * as react from "react";\n'
            "export class Main {\n"
            "  constructor(private repo: Repo) {}\n"
            "  run(): void {\n"
            "    this.repo.save();\n"
            "    make();\n"
            "    react.render();\n"
            "  }\n"
            "}\n"
        ),
        "web/src/view.ts": 'import { Repo } from "@lib/repo";\nexport function show(r: Repo): void {\n  r.save();\n}\n',
    })
    edges = {(source, target, kind) for source, target, kind, _ in repo.edges(("calls", "imports"))}
    assert {("app.main.Main.run", "lib.repo.Repo.save", "calls"), ("app.main.Main.run", "lib.repo.make", "calls"),
            ("app.main", "lib.repo", "imports"), ("app.main.Main.run", "external:react.render", "calls"),
            ("web.src.view.show", "web.src.shared.repo.Repo.save", "calls")} <= edges  # web/ has its own config
    # the alias changes: the importing files are resolved again
    repo.apply({"tsconfig.json": config % (".", "nowhere/*")})
    edges = {(source, target, kind) for source, target, kind, _ in repo.edges(("calls", "imports"))}
    assert ("app.main.Main.run", "external:@lib/repo.make", "calls") in edges
    assert ("app.main.Main.run", "lib.repo.make", "calls") not in edges
    # no config above the file, then one arrives
    repo.apply({"tsconfig.json": None})
    assert ("app.main.Main.run", "external:@lib/repo.make") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    repo.apply({"tsconfig.json": config % (".", "lib/*")})
    assert ("app.main.Main.run", "lib.repo.make") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}

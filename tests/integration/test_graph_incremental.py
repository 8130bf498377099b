"""Incremental graph maintenance: after any sequence of edits, renames and deletes (each followed by resolve),
the edges equal a clean build of the final tree, with nothing dangling, duplicated or left over."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.graph_repos import GraphRepo, file_facts

from lode.engine import Lode
from lode.store.graph import GraphStore
from lode.store.repositories import Files

MODULES = ("a", "b", "c", "d")


@dataclass(frozen=True)
class Tree:
    """A family of repositories: file slots, the fragments modules are made of ({x} is another module), and
    the contents of the one file that is edited but never deleted or renamed (the package's index)."""

    slots: tuple[str, ...]  # the last ones are only reached by renames
    fragments: tuple[str, ...]
    index: str
    index_contents: tuple[str, ...]

    def steps(self) -> st.SearchStrategy[list[tuple[str, str, str]]]:
        return st.lists(
            st.one_of(
                st.tuples(st.just("write"), st.sampled_from(self.slots), self.content()),
                st.tuples(st.just("write"), st.just(self.index), st.sampled_from(self.index_contents)),
                st.tuples(st.just("delete"), st.sampled_from(self.slots), st.just("")),
                st.tuples(st.just("rename"), st.sampled_from(self.slots), st.sampled_from(self.slots)),
            ),
            min_size=1,
            max_size=6,
        )

    def content(self) -> st.SearchStrategy[str]:
        fragment = st.tuples(st.sampled_from(range(len(self.fragments))), st.sampled_from(MODULES))
        return st.lists(fragment, max_size=6).map(
            lambda parts: "".join(self.fragments[i].format(x=x) for i, x in parts) or "\n"
        )

    def initial(self) -> st.SearchStrategy[list[tuple[str, str]]]:
        return st.lists(st.tuples(st.sampled_from(self.slots[:4]), self.content()), min_size=1, max_size=4)


# Together the fragments exercise every resolution rule whose answer depends on another file: imports and
# aliases, re-exports, star imports, module attributes, base classes (own, imported, through a chain),
# super(), typed receivers.
PYTHON = Tree(
    slots=(*(f"pkg/{m}.py" for m in MODULES), "pkg/e.py", "main.py"),
    fragments=(
        "from pkg.{x} import f\n",
        "from pkg.{x} import A as Base\n",
        "from . import {x}\n",
        "import pkg.{x} as {x}_mod\n",
        "from .{x} import *\n",
        "from pkg import g\n",
        "def f():\n    return g()\n",
        "def g():\n    return {x}.f()\n",
        "def h():\n    return {x}_mod.A().n()\n",
        "class A:\n    def m(self):\n        return self.n()\n    def n(self):\n        return f()\n",
        "class A(Base):\n    def n(self):\n        return super().m()\n",
        "class C(A):\n    def k(self):\n        return self.m() + self.n()\n",
        "def use():\n    obj = C()\n    return obj.m(), Base().n()\n",
        "VALUE = A()\n\ndef through():\n    return VALUE.n()\n",
    ),
    index="pkg/__init__.py",
    index_contents=("", "from .a import f\n", "from .b import A, g\n", "from .c import *\n", "from .d import g as f\n"),
)
TYPESCRIPT = Tree(
    slots=(*(f"src/{m}.ts" for m in MODULES), "src/e.ts", "src/lib/d.ts"),
    fragments=(
        'import {{ f }} from "./{x}";\n',
        'import * as ns from "./{x}";\n',
        'import {{ A as Base }} from "./{x}";\n',
        'import def from "./{x}";\n',
        'import {{ g }} from "./lib";\n',
        'export * from "./{x}";\n',
        'export {{ f as g }} from "./{x}";\n',
        "export function f() {{ return g(); }}\n",
        "export function g() {{ return ns.f(); }}\n",
        "export class A {{ m() {{ return this.n(); }} n() {{ return f(); }} }}\n",
        "export class B extends Base {{ n() {{ return super.m(); }} }}\n",
        "export default function main() {{ const b = new B(); return b.m() + def(); }}\n",
    ),
    index="src/lib/index.ts",
    index_contents=("", 'export * from "../a";\n', 'export { g } from "../b";\n', 'export { f as g } from "./d";\n'),
)


def changes_for(tree: Tree, texts: dict[str, str], action: str, path: str, argument: str) -> dict[str, str | None]:
    if action == "write":
        return {path: argument}
    if action == "delete":
        return {path: None} if path in texts else {}
    if path in texts and argument not in texts:  # rename: the same content under another module name
        return {path: None, argument: texts[path]}
    return {}


def leftovers(lode: Lode, repo: GraphRepo) -> list[str]:
    """Rows that belong to no current file, edges into missing nodes, and unconsumed work."""
    problems = []
    with lode.db.connection() as conn:
        live = sorted(repo.file_ids.values())
        stored = [
            row[0]
            for row in conn.execute("SELECT file_id FROM graph_files WHERE repo_id = %s ORDER BY 1", (repo.repo_id,))
        ]
        if stored != live:
            problems.append(f"graph_files {stored} != {live}")
        for table, column in (
            ("graph_nodes", "id"),
            ("graph_edges", "source_id"),
            ("graph_file_dependencies", "file_id << 20"),
        ):
            count = conn.execute(
                f"SELECT count(*) FROM {table} WHERE repo_id = %s AND NOT ({column}) >> 20 = ANY(%s)",
                (repo.repo_id, live),
            ).fetchone()[0]
            if count:
                problems.append(f"{count} rows of {table} outside the live files")
        dangling = conn.execute(
            """SELECT count(*) FROM graph_edges e WHERE e.repo_id = %s AND (
                   NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.source_id)
                   OR (e.target_id IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.target_id)))""",
            (repo.repo_id,),
        ).fetchone()[0]
        if dangling:
            problems.append(f"{dangling} dangling edges")
        queued = conn.execute(
            "SELECT count(*) FROM graph_dirty_files WHERE repo_id = %s", (repo.repo_id,),
        ).fetchone()[0]
        if queued:
            problems.append(f"{queued} queued items left")
    return problems


def clean_build(lode: Lode, texts: dict[str, str]) -> GraphRepo:
    repo = GraphRepo(lode, f"clean-{uuid.uuid4().hex[:10]}")
    repo.apply(dict(texts))
    return repo


def check_edit_sequence(
    lode: Lode, tree: Tree, initial: list[tuple[str, str]], steps: list[tuple[str, str, str]]
) -> None:
    repo = GraphRepo(lode, f"inc-{uuid.uuid4().hex[:10]}")
    repo.apply({tree.index: "", **dict(initial)})
    for action, path, argument in steps:
        if changes := changes_for(tree, repo.texts, action, path, argument):
            repo.apply(changes)
    assert leftovers(lode, repo) == []
    assert repo.snapshot() == clean_build(lode, repo.texts).snapshot()


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(initial=PYTHON.initial(), steps=PYTHON.steps())
def test_random_python_edit_sequences_equal_a_clean_build(
    lode: Lode, initial: list[tuple[str, str]], steps: list[tuple[str, str, str]]
) -> None:
    check_edit_sequence(lode, PYTHON, initial, steps)


@SETTINGS
@given(initial=TYPESCRIPT.initial(), steps=TYPESCRIPT.steps())
def test_random_typescript_edit_sequences_equal_a_clean_build(
    lode: Lode, initial: list[tuple[str, str]], steps: list[tuple[str, str, str]]
) -> None:
    check_edit_sequence(lode, TYPESCRIPT, initial, steps)


def test_a_base_class_change_in_one_file_moves_inherited_calls_in_another(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply(
        {
            "base1.py": "class Base:\n    def run(self):\n        pass\n",
            "base2.py": "class Other:\n    def run(self):\n        pass\n",
            "mid.py": "from base1 import Base\n\nclass Mid(Base):\n    pass\n",
            "use.py": "from mid import Mid\n\ndef go():\n    Mid().run()\n",
        }
    )
    assert ("use.go", "base1.Base.run") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    repo.apply({"mid.py": "from base2 import Other\n\nclass Mid(Other):\n    pass\n"})
    calls = {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    assert ("use.go", "base2.Other.run") in calls and ("use.go", "base1.Base.run") not in calls
    assert repo.snapshot() == clean_build(lode, repo.texts).snapshot()


def test_renaming_a_module_turns_its_callers_external_and_back(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    util = "def helper():\n    pass\n"
    repo.apply({"util.py": util, "app.py": "from util import helper\n\ndef main():\n    helper()\n"})
    assert ("app.main", "util.helper") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    repo.apply({"util.py": None, "tools.py": util})
    assert ("app.main", "external:util.helper") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    repo.apply({"tools.py": None, "util.py": util})
    assert ("app.main", "util.helper") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    assert leftovers(lode, repo) == []


def test_queued_work_survives_a_resolve_that_rolls_back(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply({"a.py": "def f():\n    pass\n"})
    facts = file_facts("b.py", "from a import f\n\ndef g():\n    f()\n", frozenset({"a.py", "b.py"}))
    with lode.db.connection() as conn, conn.transaction():  # a file's transaction, then the run dies
        file_id = Files(conn).reserve_ids(1)[0]
        Files(conn).insert(file_id, repo.repo_id, "b.py", "python", 0, 0, "graph-test", None)
        GraphStore(conn).replace_file(repo.repo_id, file_id, facts)
    with pytest.raises(RuntimeError), lode.db.connection() as conn, conn.transaction():
        GraphStore(conn).resolve(repo.repo_id)
        raise RuntimeError("killed before the resolve committed")
    assert ("b.g", "a.f") not in {(s, t) for s, t, _, _ in repo.edges(("calls",))}
    with lode.db.connection() as conn, conn.transaction():
        report = GraphStore(conn).resolve(repo.repo_id)
    assert report.references == len(facts.references)
    assert ("b.g", "a.f") in {(s, t) for s, t, _, _ in repo.edges(("calls",))}

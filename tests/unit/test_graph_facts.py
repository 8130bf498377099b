"""Graph facts extraction, per language, without a database."""

from __future__ import annotations

import pytest
from tests.support.graph_repos import SETTINGS, file_facts

from lode.chunking.chunker import chunk_file_with_tree
from lode.graph.facts import (
    MODULE_ORDINAL,
    SELF,
    SUPER,
    FileFacts,
    _callee,
    extract_facts,
)


def calls(facts: FileFacts) -> list[tuple[str, str, int, str | None]]:
    return [(facts.symbols[r.source].name_path, r.name, r.line, r.hint) for r in facts.references if r.kind == "calls"]


def bindings(facts: FileFacts) -> set[tuple[str, str, str, str]]:
    return {(facts.symbols[b.scope].name_path, b.name, b.target, b.kind) for b in facts.bindings}


def refs(facts: FileFacts, kind: str) -> set[tuple[str, str]]:
    return {(facts.symbols[r.source].name_path, r.name) for r in facts.references if r.kind == kind}


PACKAGE = frozenset({"pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/mod.py"})


def test_python_nodes_are_symbol_chunks_plus_the_module() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(400))  # too long for one chunk: split into parts
    source = f"class Big:\n{body}    def m(self):\n        pass\n\ndef f():\n    pass\n"
    facts = file_facts("pkg/sub/mod.py", source, PACKAGE)
    chunked, _ = chunk_file_with_tree("pkg/sub/mod.py", source, "python", "pkg.sub.mod", SETTINGS)
    assert sum(chunk.name_path == "pkg.sub.mod.Big" for chunk in chunked.chunks) > 1
    assert [(s.name_path, s.kind) for s in facts.symbols] == [
        ("pkg.sub.mod", "module"),
        ("pkg.sub.mod.Big", "class"),
        ("pkg.sub.mod.Big.m", "method"),
        ("pkg.sub.mod.f", "function"),
    ]
    assert facts.symbols[0].ordinal == MODULE_ORDINAL
    big = facts.symbols[1]
    assert big.ordinal == 0 and big.start_line == 1 and big.end_line >= 403  # one node across its parts


def test_python_imports_become_absolute_bindings_and_import_references() -> None:
    source = (
        "import os.path\n"
        "import numpy as np\n"
        "from . import sibling\n"
        "from .. import top as t\n"
        "from ..other import (a, b as bee)\n"
        "from .deep.er import x\n"
        "from ... import beyond\n"
        "from json import *\n"
        "def f():\n"
        "    from .lazy import helper\n"
        "    return helper()\n"
    )
    facts = file_facts("pkg/sub/mod.py", source, PACKAGE)
    assert bindings(facts) == {
        ("pkg.sub.mod", "os", "os", "import"),
        ("pkg.sub.mod", "np", "numpy", "import"),
        ("pkg.sub.mod", "sibling", "pkg.sub.sibling", "import"),
        ("pkg.sub.mod", "t", "pkg.top", "import"),
        ("pkg.sub.mod", "a", "pkg.other.a", "import"),
        ("pkg.sub.mod", "bee", "pkg.other.b", "import"),
        ("pkg.sub.mod", "x", "pkg.sub.deep.er.x", "import"),
        ("pkg.sub.mod", "beyond", "....beyond", "import"),  # above the top package: resolves to nothing
        ("pkg.sub.mod", "*", "json", "star"),
        ("pkg.sub.mod.f", "helper", "pkg.sub.lazy.helper", "import"),
    }
    assert ("pkg.sub.mod", "os.path") in refs(facts, "imports")
    assert ("pkg.sub.mod.f", "pkg.sub.lazy.helper") in refs(facts, "imports")


def test_python_relative_imports_in_a_package_init() -> None:
    facts = file_facts("pkg/sub/__init__.py", "from .mod import f\nfrom . import mod\n", PACKAGE)
    assert bindings(facts) == {("pkg.sub", "f", "pkg.sub.mod.f", "import"), ("pkg.sub", "mod", "pkg.sub.mod", "import")}


def test_python_calls_carry_their_enclosing_definition_and_receiver_hints() -> None:
    source = (
        "class A(Base, mod.Mixin, metaclass=Meta):\n"  # 1
        "    attr: Helper\n"
        "    def m(self, typed: Thing, other: 'Quoted' = None):\n"
        "        self.n()\n"  # 4
        "        super().m()\n"
        "        super(A, self).m()\n"
        "        typed.run()\n"
        "        obj = Maker(1)\n"
        "        obj.go()\n"  # 9
        "        self.x = Widget()\n"
        "        g(h(1)).chain(2)\n"
        "        def inner():\n"
        "            return local()\n"
        "        return inner()\n"
        "    @classmethod\n"
        "    def k(cls):\n"
        "        return cls.make()\n"  # 17
        "def free(self):\n"
        "    self.n()\n"
        "Maker().go()\n"  # 20
        "shared = Maker()\n"
    )
    facts = file_facts("pkg/sub/mod.py", source, PACKAGE)
    found = calls(facts)
    m, k, free = "pkg.sub.mod.A.m", "pkg.sub.mod.A.k", "pkg.sub.mod.free"
    for expected in [
        (m, "self.n", 4, SELF),
        (m, "super().m", 5, SUPER),
        (m, "super().m", 6, SUPER),
        (m, "typed.run", 7, "Thing"),
        (m, "Maker", 8, None),
        (m, "obj.go", 9, "Maker"),
        (m, "Widget", 10, None),
        (m, "g().chain", 11, "g"),
        (m, "h", 11, None),
        (m, "local", 13, None),
        (m, "inner", 14, None),
        (k, "cls.make", 17, SELF),
        (free, "self.n", 19, None),  # not a method: `self` is just a name
        ("pkg.sub.mod", "Maker().go", 20, "Maker"),
        ("pkg.sub.mod", "Maker", 20, None),
    ]:
        assert expected in found
    assert refs(facts, "inherits") == {("pkg.sub.mod.A", "Base"), ("pkg.sub.mod.A", "mod.Mixin")}
    assert {
        ("pkg.sub.mod.A", "attr", "Helper", "instance"),
        ("pkg.sub.mod.A", "x", "Widget", "instance"),
        ("pkg.sub.mod", "shared", "Maker", "instance"),
    } <= bindings(facts)


def test_a_local_hint_holds_only_after_its_assignment() -> None:
    source = "def f():\n    a.m()\n    a = A()\n    a.m()\n    a = B()\n    a.m()\n"
    facts = file_facts("m.py", source, frozenset())
    assert [(name, hint) for _, name, _, hint in calls(facts) if name == "a.m"] == [
        ("a.m", None),
        ("a.m", "A"),
        ("a.m", "B"),
    ]


def test_javascript_and_typescript_imports_exports_and_require() -> None:
    source = (
        'import def1, { a as b, c } from "./lib/util";\n'
        'import * as ns from "../shared";\n'
        'import React from "react";\n'
        'export { p as q } from "./y";\n'
        'export * from "./z";\n'
        "export { local as renamed, kept };\n"
        "export default function main() { ns.go(); }\n"
        'const k = require("./k");\n'
        'const { u, v: w } = require("./k2");\n'
        "function local() {}\n"
    )
    facts = file_facts("src/app/x.ts", source, frozenset())
    assert bindings(facts) == {
        ("src.app.x", "def1", "src.app.lib.util.default", "import"),
        ("src.app.x", "b", "src.app.lib.util.a", "import"),
        ("src.app.x", "c", "src.app.lib.util.c", "import"),
        ("src.app.x", "ns", "src.shared", "import"),
        ("src.app.x", "React", "react.default", "external"),
        ("src.app.x", "q", "src.app.y.p", "import"),
        ("src.app.x", "*", "src.app.z", "star"),
        ("src.app.x", "renamed", "src.app.x.local", "import"),
        ("src.app.x", "default", "src.app.x.main", "import"),
        ("src.app.x", "k", "src.app.k", "import"),
        ("src.app.x", "u", "src.app.k2.u", "import"),
        ("src.app.x", "w", "src.app.k2.v", "import"),
    }
    assert ("src.app.x", "react") in refs(facts, "imports")


def test_typescript_calls_heritage_and_receiver_types() -> None:
    source = (
        "class A extends Base implements Shape, Other {\n"
        "  private svc: Service;\n"
        "  constructor(private repo: Repo, x) { super(x); this.other = new Other(); }\n"
        "  run(job: Job) { this.go(); super.run(); job.start(); this.svc.call(); const t = new Timer(); t.tick(); }\n"
        "}\n"
    )
    facts = file_facts("a.ts", source, frozenset())
    found = {(source, name, hint) for source, name, _, hint in calls(facts)}
    assert {
        ("a.A.constructor", "super.constructor", SUPER),
        ("a.A.constructor", "Other", None),
        ("a.A.run", "this.go", SELF),
        ("a.A.run", "super.run", SUPER),
        ("a.A.run", "job.start", "Job"),
        ("a.A.run", "this.svc.call", SELF),
        ("a.A.run", "Timer", None),
        ("a.A.run", "t.tick", "Timer"),
    } <= found
    assert refs(facts, "inherits") == {("a.A", "Base"), ("a.A", "Shape"), ("a.A", "Other")}
    assert {
        ("a.A", "svc", "Service", "instance"),
        ("a.A", "repo", "Repo", "instance"),
        ("a.A", "other", "Other", "instance"),
    } <= bindings(facts)


def test_go_package_imports_receivers_and_embedding() -> None:
    source = (
        "package server\n"
        'import (\n  "fmt"\n  u "github.com/acme/proj/util"\n  "github.com/acme/proj/store/v2"\n)\n'
        "type S struct { Base\n  *log.Logger }\n"
        "func (s *S) Handle() { s.log(); u.Do(); fmt.Println(); x := &Conn{}; x.Close(); helper() }\n"
    )
    facts = file_facts("srv/server.go", source, frozenset())
    assert facts.namespace == "server"
    assert bindings(facts) == {
        ("srv.server", "fmt", "fmt", "package"),
        ("srv.server", "u", "github.com/acme/proj/util", "package"),
        ("srv.server", "store", "github.com/acme/proj/store/v2", "package"),
    }
    found = {(name, hint) for source, name, _, hint in calls(facts) if source == "server.S.Handle"}
    assert found == {("s.log", SELF), ("u.Do", None), ("fmt.Println", None), ("x.Close", "Conn"), ("helper", None)}
    assert refs(facts, "inherits") == {("server.S", "Base"), ("server.S", "log.Logger")}


def test_java_package_imports_and_calls() -> None:
    source = (
        "package com.acme;\n"
        "import com.acme.util.Strings;\n"
        "import com.acme.model.*;\n"
        "import static com.acme.util.Math.max;\n"
        "class A extends B implements C {\n"
        "  private Repo repo;\n"
        "  void m(Job job) { Strings.trim(); this.n(); n(); super.o(); job.run(); repo.save(); new D(); max(); }\n"
        "}\n"
    )
    facts = file_facts("src/com/acme/A.java", source, frozenset())
    assert facts.namespace == "com.acme"
    module = "src.com.acme.A"
    assert bindings(facts) >= {
        (module, "Strings", "com.acme.util.Strings", "import"),
        (module, "*", "com.acme.model", "star"),
        (module, "max", "com.acme.util.Math.max", "import"),
        ("com.acme.A", "repo", "Repo", "instance"),
    }
    found = {(name, hint) for source, name, _, hint in calls(facts) if source == "com.acme.A.m"}
    assert found == {
        ("Strings.trim", None),
        ("this.n", SELF),
        ("n", None),
        ("super.o", SUPER),
        ("job.run", "Job"),
        ("repo.save", None),
        ("D", None),
        ("max", None),
    }
    assert refs(facts, "inherits") == {("com.acme.A", "B"), ("com.acme.A", "C")}


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "src/lib.rs",
            "fn run() { helper(); Vec::<u8>::new(); self.conn.send(); }\n",
            {("src.lib.run", "helper"), ("src.lib.run", "Vec.new"), ("src.lib.run", "conn.send")},
        ),
        ("a.c", "int m(void) { return helper(); }", {("a.m", "helper")}),
        (
            "a.cpp",
            "namespace n { class K { void m() { helper(); other::g(); } }; }",
            {("n.K.m", "helper"), ("n.K.m", "other.g")},
        ),
        (
            "a.rb",
            "class K < Base\n  def m\n    helper(1)\n    x.go\n  end\nend\n",
            {("a.K.m", "helper"), ("a.K.m", "go")},
        ),
        (
            "a.php",
            "<?php\nclass K { function m() { helper(); $this->go(); A::b(); new C(); } }",
            {("a.K.m", "helper"), ("a.K.m", "go"), ("a.K.m", "b"), ("a.K.m", "C")},
        ),
        (
            "a.cs",
            "namespace N { class K { void M() { Helper(); x.Go(); new C(); } } }",
            {("N.K.M", "Helper"), ("N.K.M", "x.Go"), ("N.K.M", "C")},
        ),
        ("a.tsx", "function A(p: Props) { return <div onClick={() => go(p)} />; }", {("a.A", "go")}),
        ("a.jsx", "export default function A() { return <B x={f()} />; }", {("a.A", "f")}),
    ],
)
def test_every_grammar_records_calls(path: str, source: str, expected: set[tuple[str, str]]) -> None:
    facts = file_facts(path, source, frozenset())
    assert {(source, name) for source, name, _, _ in calls(facts)} == expected


def test_no_tree_means_only_the_module_node() -> None:
    chunked, tree = chunk_file_with_tree("broken.py", "def f(:\n", "python", "broken", SETTINGS)
    assert tree is None
    facts = extract_facts("broken.py", "def f(:\n", "python", "broken", chunked, tree)
    assert [s.kind for s in facts.symbols] == ["module"] and facts.references == []


def test_definitions_sharing_a_line_own_their_calls_by_byte() -> None:
    facts = file_facts(
        "a.ts", "class A extends B { m() { this.n(); } n() { f(); } }\nclass C { k() { g(); } }\n", frozenset()
    )
    assert {(source, name) for source, name, _, _ in calls(facts)} == {
        ("a.A.m", "this.n"),
        ("a.A.n", "f"),
        ("a.C.k", "g"),
    }
    assert refs(facts, "inherits") == {("a.A", "B")}


def test_python_builtin_calls_are_left_out_unless_the_file_can_shadow_them() -> None:
    plain = "def f(items):\n    print(len(items))\n    return dict.fromkeys(items), helper(items)\n"
    assert {name for _, name, _, _ in calls(file_facts("a.py", plain, frozenset({"a.py"})))} == {"helper"}
    for shadowing, kept in (
        ("from b import *\n", {"print", "len", "dict.fromkeys", "helper"}),  # b may define any of them
        ("from b import len\n", {"len", "helper"}),
        ("def len(x):\n    return 0\n", {"len", "helper"}),
    ):
        names = {name for _, name, _, _ in calls(file_facts("a.py", shadowing + plain, frozenset({"a.py"})))}
        assert names == kept, shadowing
    hinted = "def f(items):\n    str = Text()\n    str.join(items)\n"  # a hint keeps a builtin's name
    assert calls(file_facts("a.py", hinted, frozenset({"a.py"}))) == [("a.f", "Text", 2, None),
                                                                      ("a.f", "str.join", 3, "Text")]


def test_a_repeated_callee_gets_each_call_its_own_scope_line_and_hint() -> None:
    source = (
        "def f():\n"
        "    g()\n"
        "    x.run()\n"
        "    x = Job()\n"
        "    x.run()\n"
        "\n"
        "class C:\n"
        "    def m(self):\n"
        "        g()\n"
        "        self.run()\n"
        "\n"
        "g()\n"
        "self.run()\n"
    )
    assert calls(file_facts("mod.py", source, frozenset({"mod.py"}))) == [
        ("mod.f", "g", 2, None),
        ("mod.f", "x.run", 3, None),
        ("mod.f", "Job", 4, None),
        ("mod.f", "x.run", 5, "Job"),
        ("mod.C.m", "g", 9, None),
        ("mod.C.m", "self.run", 10, SELF),
        ("mod", "g", 12, None),
        ("mod", "self.run", 13, None),
    ]


def test_callee_whitespace_around_punctuation_goes() -> None:
    assert _callee("a (\n  x ) . b") == "a().b"
    assert _callee("foo [ 0 ] .bar") == "foo[0].bar"
    assert _callee("new  Foo ( 1 , 2 ).run") == "Foo().run"
    assert _callee("a  b") == "a b"

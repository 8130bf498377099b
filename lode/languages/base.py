"""The record every language module fills in: how its files are found, chunked, named, read for graph facts,
resolved and recognised as tests. Everything language-specific lives in these records; the rest of Lode asks
the registry (lode.languages) and branches on a record's fields, never on a language's name."""

from __future__ import annotations

import importlib
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CONTAINER_KINDS = frozenset({"class", "struct", "interface", "trait", "enum"})  # their members are chunked too


@dataclass(frozen=True, slots=True)
class Definition:
    """A node type that defines something named."""

    kind: str  # function | method | class | struct | interface | trait | enum; a function in a type becomes a method
    name_field: str = "name"
    body_field: str | None = "body"
    requires_body: bool = False  # without a body it is only a declaration (C prototype, abstract method)
    # When set, the kind comes from the type of this child and the body is looked up on that child:
    # JS `const f = () => {}` (value: arrow_function), Go `type T struct {...}` (type: struct_type).
    value_field: str | None = None
    value_kinds: Mapping[str, str] = field(default_factory=dict)
    receiver_field: str | None = None  # Go: the method belongs to its receiver's type


@dataclass(frozen=True, slots=True)
class Wrapper:
    """A node that wraps definitions and belongs to their chunk (decorators, `export`, `template <...>`)."""

    field: str | None  # the wrapped node; None: every named child that has no field name
    name_field: str | None = None  # names an anonymous definition: C `typedef struct {...} Name;`
    in_signature: bool = False  # the signature starts at the wrapper: `const f = () =>`, Go `type T struct`


@dataclass(frozen=True, slots=True)
class Scope:
    """A namespace-like block that names its definitions but is not a chunk itself (namespace, Rust impl)."""

    name_field: str | None = "name"  # None: anonymous, e.g. C++ `extern "C" { ... }`
    body_field: str = "body"
    names_type: bool = False  # named by a type, so its functions are methods: Rust `impl Trait for Foo`
    replaces_module: bool = False  # at top level, the namespace stands in for the module in name paths


@dataclass(frozen=True, slots=True)
class Grammar:
    """Which tree-sitter nodes define what: the chunker's whole knowledge of a language."""

    load: Callable[[], object]  # returns the language capsule from the grammar wheel
    definitions: Mapping[str, Definition]
    wrappers: Mapping[str, Wrapper] = field(default_factory=dict)
    scopes: Mapping[str, Scope] = field(default_factory=dict)
    # A declaration naming the rest of the file (Java package) -> the field holding the name, None: first named child.
    file_namespaces: Mapping[str, str | None] = field(default_factory=dict)
    member_lists: frozenset[str] = frozenset()  # nodes inside a body whose children are its members or statements
    comments: frozenset[str] = frozenset({"comment"})
    attachments: frozenset[str] = frozenset()  # besides comments, leading siblings that belong to the next definition
    python_docstrings: bool = False  # docstring from the body's first string, not from the comment above
    python_guards: bool = False  # definitions under if/try/with statements are found, with their guard


@dataclass(frozen=True, slots=True)
class Resolution:
    """How the graph resolves a language's references (lode.graph.resolve); all False: by name only."""

    by_scope: bool = False  # through imports, scopes and receivers; else by the callee's last name (BY_NAME)
    python_imports: bool = False  # import roots, package `__init__` re-exports; unresolved builtin calls dropped
    es_modules: bool = False  # `./dir` is `./dir/index`, `module.exports`, tsconfig `paths`
    names_in_package: bool = False  # a bare name is also looked up in the file's package (Go, Java)
    package_is_folder: bool = False  # Go: a package is its folder; its types' members may be in any of its files
    embedded_fields: bool = False  # Go: an embedded struct is also a field named by its type (`i.Base.Save()`)
    implicit_this: bool = False  # Java: a bare name may be a member of an enclosing type
    overloads: bool = False  # Java: overloads are nodes of their own (`save(String,int)`), found by their plain name


BY_NAME_ONLY = Resolution()


def wheel(module: str, function: str = "language") -> Callable[[], object]:
    """A grammar loader: the capsule `module.function()` of a tree-sitter grammar wheel, imported when first used."""
    return lambda: getattr(importlib.import_module(module), function)()


def path_module_name(path: str, all_paths: frozenset[str]) -> str:
    """The path without its extension, dotted: "src/app/util.ts" is "src.app.util"."""
    directory, filename = posixpath.split(path)
    stem = filename.rpartition(".")[0] or filename
    return posixpath.join(directory, stem).replace("/", ".")


@dataclass(frozen=True, slots=True)
class Language:
    name: str  # the id stored with every file and chunk
    extensions: tuple[str, ...]  # lowercase, with the dot
    filenames: tuple[str, ...] = ()  # whole file names that are this language whatever their extension (Makefile)
    aliases: tuple[str, ...] = ()  # other names people type for it (`--lang py`), lowercase
    grammar: Grammar | None = None  # None: chunked by line windows
    # '/'-separated repository path and every path of the repository -> the dotted module name (name path prefix)
    module_name: Callable[[str, frozenset[str]], str] = path_module_name
    # which graph facts reader of lode.graph.facts reads it (they stay there: they share its tree-sitter helpers);
    # None: calls by name through call_query, if any
    facts_reader: str | None = None
    call_query: str | None = None  # tree-sitter query capturing `@call` callees, for languages resolved by name
    resolution: Resolution = BY_NAME_ONLY
    # regular expressions (searched in the '/'-separated path) naming its test files by this language's convention
    test_paths: tuple[str, ...] = ()

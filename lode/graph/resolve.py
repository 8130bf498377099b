"""Resolution: raw references plus the repository's symbol table -> edges with a confidence.

Rules, by language (which language follows which rules is its record's Language.resolution, lode.languages):
- Python: `import x`, `import x as y`, `from x import y as z`, relative imports (made absolute at extraction),
  `import *`, `__init__` re-exports (a module's own imports are its members); `self.m()`/`cls.m()` through the
  enclosing class, then its bases depth-first in declaration order; `super().m()` through the bases; `C.m()`;
  module attributes; a receiver typed by `x = C()`, `C().m()`, `x: C`, a `C`-annotated parameter,
  `self.x = C()` or a class-level `x: C`. Calls of unresolved builtins (len, print, dict.get, ...) are dropped,
  most of them at extraction (facts._unshadowed_builtins); builtin bases (`object`, `Exception`) and every other
  miss go external.
- JavaScript/TypeScript: ES imports (named, default, namespace), `export {..} from`, `export *`,
  `export default`, `require` (whole module or destructured); `./x` may be `./x/index`; `this.m()`,
  `super.m()`, `super(...)`, `new C()`; receivers from `x = new C()`, typed parameters, class fields and
  constructor parameter properties. Bare specifiers (`@app/x`) go through the `paths` and `baseUrl` of the
  nearest tsconfig.json / jsconfig.json above the file (facts.TS_PATHS); those they do not map (`react`) are
  external.
- Go: package-qualified calls through the import path (the target's directory must end the path), same-package
  names, receiver methods, embedded structs as bases. Java: package-qualified names, imports (single, star,
  static), implicit `this`, `this.`/`super.`, typed locals, fields (`this.repo`, `repo`) and parameters;
  overloads are nodes of their own (`Repo.save(String,int)`, facts.java_parameters), found by their plain name,
  and a call keeps those its argument count fits (fixed arity, else varargs; else all, split).
- Other languages: by name (the callee's last name, preferring matches of its qualifier, then the same file),
  confidence BY_NAME split; a name with more than MAX_CANDIDATES candidates goes external (too common to mean
  anything, like `get`).
Type annotations (`annotates`: each name in one, per definition) and decorators (`decorates`) resolve like base
classes and calls, and make edges only to definitions in the repository. Calls inside a decorator belong to the
scope around the decorated definition (they run when it is made).
Python type flow, bounded to what is written: `self.x = param` from a typed parameter or local; return
annotations (`-> Self`, a string) or `return self` (RETURNS bindings), so `x = y.copy()`, `a.b().c()` and
`with C() as s` (through `C.__enter__`) type their results; `name = other` in a module or class body (ALIAS:
`response_class = Response`, then `self.response_class()`); annotated module globals; constructor arguments:
`self.x = p` in `__init__` from an untyped parameter holds what the class's calls (`Foo(Bar())`, `Foo(p=b)`, with
b's type known) pass as p, each type kept (CONSTRUCTOR_ARGUMENT, so several split the edge); union annotations
(`A | B`, `Union[A, B]`) keep each member, scaled by the share of members that name something in the repository.
Not followed: aliases inside functions, `x = a or b`, attributes of untyped values: those stay external, never
guessed.
Nested functions are no nodes: calls inside them belong to the enclosing definition, calls to them go external.

Every edge carries a confidence: the product of the rule factors below, split evenly across the candidates when
a reference is ambiguous. A reference with no in-repository target becomes one edge to an external node named
by what was written, with its import expanded (`np.zeros` -> `numpy.zeros`); nothing is guessed.

Resolving a file's references records every name they looked up, found or not (hashed): when a file that
defines or binds one of them changes, the file is resolved again, whole. See store.GraphStore.resolve.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from lode.graph import facts as f
from lode.languages import LANGUAGES
from lode.languages.base import BY_NAME_ONLY, Resolution
from lode.store.repositories import chunk_id

EXACT = 1.0
SELF_MEMBER = 0.9  # self.m(), this.m(), implicit this: an override in a subclass may run instead
INHERITED = 0.9  # per base class climbed
TYPED_RECEIVER = 0.8  # the receiver's type comes from an assignment or an annotation
RETURNED = 0.9  # and, besides, from what a function returns (its return annotation, or `return self`)
CONSTRUCTOR_ARGUMENT = 0.6  # the type comes from what the class's constructor calls pass (an unannotated parameter)
BY_NAME = 0.5  # languages resolved by name only
MAX_CANDIDATES = 8  # for resolution by name only
MAX_STEPS = 5_000  # lookups one reference may compute (a guard: real code needs a few dozen); then it goes external

TYPE_KINDS = frozenset({"class", "struct", "interface", "trait", "enum"})
CALLABLE_KINDS = frozenset({"function", "method"}) | TYPE_KINDS
_FUNCTION_KINDS = frozenset({"function", "method"})
_WANTED = {"calls": CALLABLE_KINDS, "decorates": CALLABLE_KINDS, "inherits": TYPE_KINDS, "annotates": TYPE_KINDS}
# uses that make edges to the repository's own definitions only: externals (`int`, `@property`) would be most
# of them and serve no question `lode graph refs` answers about the repository
_IN_REPOSITORY_ONLY = frozenset({"annotates", "decorates"})
_NONE: list = []  # an empty result, never mutated
_TS_PATHS_KEY = "@paths"  # the looked-up name of every TS config's paths
_DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$#][\w$]*)*\Z")
_CALLED_DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\(\))?(?:\.[A-Za-z_$#][\w$]*(?:\(\))?)*(?:\[\])?\Z")


def rules(language: str) -> Resolution:
    """The resolution rules of a language id as stored; a language the registry does not know resolves by name."""
    record = LANGUAGES.get(language)
    return record.resolution if record else BY_NAME_ONLY


def name_key(name: str) -> int:
    """A stable 64-bit hash of a looked-up name, as stored in graph_file_dependencies and graph_dirty_files."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little", signed=True)


def fact_keys(facts: f.FileFacts) -> set[str]:
    """The names a file defines or binds: what its arrival or departure may change for other files."""
    return definition_keys(
        facts.path,
        facts.language,
        [(symbol.name_path, symbol.name) for symbol in facts.symbols],
        [(facts.symbols[binding.scope].name_path, binding.name) for binding in facts.bindings],
    )


def definition_keys(
    path: str, language: str, nodes: Iterable[tuple[str, str]], bindings: Iterable[tuple[str, str]]
) -> set[str]:
    keys = {key for name_path, name in nodes for key in (name_path, "~" + name)}
    for scope, name in bindings:  # constructor arguments and TS paths are looked up without their scope
        keys.add(name if name.startswith(f.CONSTRUCTS) else _TS_PATHS_KEY if name.startswith(f.TS_PATHS)
                 else f"{scope}.{name}")
    if rules(language).package_is_folder:
        keys.add("dir:" + posixpath.dirname(path))
    return keys


class FileInfo(NamedTuple):
    file_id: int
    path: str
    language: str
    module: str
    namespace: str

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)

    @property
    def rules(self) -> Resolution:
        return rules(self.language)


class NodeInfo(NamedTuple):
    id: int
    file_id: int
    kind: str
    name: str
    name_path: str


class BindingInfo(NamedTuple):
    file_id: int
    scope_id: int
    scope: str
    name: str
    target: str
    kind: str


class ReferenceInfo(NamedTuple):
    source_id: int
    kind: str
    name: str
    line: int
    hint: str | None
    arguments: int | None = None  # calls: the argument count, when overloads may need it (Java)


Target = tuple[int | None, str | None, float]  # an edge of a reference: (node id, external name, confidence)


class _Value(NamedTuple):
    node: NodeInfo
    instance: bool  # an instance of node (a type), not node itself
    confidence: float


class _Drop(Exception):
    """The reference names a builtin: it makes no edge."""


class SymbolTable:
    """Everything resolution reads about a repository, indexed."""

    def __init__(
        self,
        files: Iterable[FileInfo],
        nodes: Iterable[NodeInfo],
        bindings: Iterable[BindingInfo],
        bases: Iterable[tuple[int, str]],  # (type node id, base expression) in declaration order
    ) -> None:
        self.files = {file.file_id: file for file in files}
        self.nodes: dict[int, NodeInfo] = {}
        self.by_path: dict[str, list[NodeInfo]] = {}
        self.by_name: dict[str, list[NodeInfo]] = {}
        self.modules_by_dir: dict[str, list[NodeInfo]] = {}
        for node in sorted(nodes, key=lambda n: n.id):
            self.nodes[node.id] = node
            self.by_path.setdefault(node.name_path, []).append(node)
            self.by_name.setdefault(node.name, []).append(node)
            if node.name_path.endswith(")") and self.files[node.file_id].rules.overloads:
                # an overload is also found by its plain name
                self.by_path.setdefault(node.name_path[: node.name_path.rfind("(")], []).append(node)
            if node.kind == "module":
                self.modules_by_dir.setdefault(self.files[node.file_id].directory, []).append(node)
        self.bindings: dict[tuple[str, str, int], list[BindingInfo]] = {}  # (scope, name, file id)
        for binding in bindings:
            self.bindings.setdefault((binding.scope, binding.name, binding.file_id), []).append(binding)
        # the scopes whose own names (local imports, typed locals) change how references in them resolve
        self.bound_scopes = {(scope, file_id) for scope, name, file_id in self.bindings if not name.startswith("@")}
        # a class's constructor calls with arguments of known type, by the class's last name (f.ARGUMENT)
        self.constructions: dict[str, list[BindingInfo]] = {}
        # TS path aliases: (config's folder, pattern, repository paths), nearest config (deepest folder) first
        self.ts_paths: list[tuple[str, str, list[str]]] = []
        for (_, name, file_id), found in self.bindings.items():
            if name.startswith(f.CONSTRUCTS):
                self.constructions.setdefault(name, []).extend(found)
            elif name.startswith(f.TS_PATHS):
                folder = self.files[file_id].directory
                self.ts_paths += [(folder, name.removeprefix(f.TS_PATHS), b.target.split("\n")) for b in found]
        self.ts_paths.sort(key=lambda item: (-len(item[0]), item[0]))
        self.bases: dict[int, list[str]] = {}
        for node_id, expression in bases:
            self.bases.setdefault(node_id, []).append(expression)
        packages = {file.directory for file in self.files.values() if _is_package_init(file)}
        self.import_folders = {file.file_id: folders for file in self.files.values()
                               if file.rules.python_imports and (folders := _import_folders(file, packages))}


def _is_package_init(file: FileInfo) -> bool:
    return file.rules.python_imports and posixpath.basename(file.path).startswith("__init__.")


def _import_folders(file: FileInfo, packages: set[str]) -> list[str]:
    """The module names of the folders around a Python file with no `__init__.py` in them or above them (up to
    its import root), innermost first: run as a script, or with such a folder on sys.path (tests, tools), the
    file imports its neighbours by their short names. Absolute imports found nowhere else are looked up under
    them; a folder inside a regular package is never on sys.path."""
    parts = file.module.split(".")
    depth = len(parts) - (0 if _is_package_init(file) else 1)  # the module's package parts
    folders = file.directory.split("/")
    found: list[str] = []
    for kept in range(1, depth + 1):
        if "/".join(folders[: len(folders) - depth + kept]) in packages:
            break
        found.insert(0, ".".join(parts[:kept]))
    return found


class Resolver:
    """Resolves references against a SymbolTable, memoising what does not depend on the reference."""

    def __init__(self, table: SymbolTable, memo_entries: int | None = None) -> None:
        self.table = table
        self.memo_entries = memo_entries  # emptied between files past this (LODE_MEMORY_BUDGET_MB); None: unbounded
        self._memo: dict[tuple[object, ...], tuple[list[_Value], frozenset[int]]] = {}
        self._deps: list[set[int]] = [set()]  # hashed names looked up, per memoised computation
        self._active: set[tuple[object, ...]] = set()
        self._cuts = 0  # cycles cut so far; a result computed across a cut depends on its caller: not memoised
        self._steps = 0  # lookups computed for the current reference, up to MAX_STEPS
        self._key_hashes: dict[str, int] = {}

    def resolve(self, file_id: int, references: list[list]) -> tuple[list[tuple[list, list[Target]]], list[int]]:
        """The targets of one file's stored references ([source ordinal, kind, name, line, hint], as in
        graph_files.refs), each with its reference, and the hashed names their resolution looked up.

        A reference's targets depend on its source only through _context, so a file's repeated references
        (`self.assertEqual` in every test method) are resolved once."""
        if self.memo_entries is not None and len(self._memo) > self.memo_entries:
            self._memo.clear()
            self._key_hashes.clear()
        self._deps = [set()]
        base = chunk_id(file_id, 0)
        resolved: list[tuple[list, list[Target]]] = []
        done: dict[tuple[object, ...], list[Target]] = {}
        contexts: dict[tuple[int, str | None], tuple[object, ...]] = {}
        for reference in references:
            ordinal, kind, name, line, hint, *rest = reference
            arguments = rest[0] if rest else None
            context = contexts.get((ordinal, hint))
            if context is None:
                context = contexts[ordinal, hint] = self._context(self.table.nodes[base | ordinal], hint)
            key = (kind, name, hint, arguments, context)
            targets = done.get(key)
            if targets is None:
                targets, reusable = self._targets(ReferenceInfo(base | ordinal, kind, name, line, hint, arguments))
                if reusable:
                    done[key] = targets
            resolved.append((reference, targets))
        return resolved, sorted(self._deps[0])

    def _targets(self, reference: ReferenceInfo) -> tuple[list[Target], bool]:
        """(target id, external name, confidence) per edge of one reference, and whether the result may be
        reused: not when a cycle or MAX_STEPS cut the search short."""
        source = self.table.nodes[reference.source_id]
        file = self.table.files[source.file_id]
        self._steps = 0
        cuts = self._cuts
        try:
            targets = self._edges(reference, self._reference(reference, source, file), file, source)
        except _Drop:
            targets = []
        return targets, self._cuts == cuts

    def _context(self, source: NodeInfo, hint: str | None) -> tuple[object, ...]:
        """What of a reference's source its resolution reads: the file; the source itself when it binds names
        (local imports, typed locals) or in Java (enclosing types); its enclosing type for self/super calls."""
        file = self.table.files[source.file_id]
        if file.rules.implicit_this or (
            source.kind in _FUNCTION_KINDS and (source.name_path, source.file_id) in self.table.bound_scopes
        ):
            return (source.file_id, source.id)
        if hint in (f.SELF, f.SUPER):
            return (source.file_id, source.kind, source.name_path.rpartition(".")[0])
        return (source.file_id,)

    # -- per reference kind

    def _reference(self, reference: ReferenceInfo, source: NodeInfo, file: FileInfo) -> list[_Value]:
        if reference.kind == "imports":
            if reference.hint == f.EXTERNAL:
                return [v for v in self._ts_aliased(reference.name, file) if v.node.kind == "module"]
            if reference.hint == f.PACKAGE:
                return [_Value(module, False, EXACT) for module in self._package_modules(reference.name)]
            if found := [value for value in self._imported(reference.name, file.file_id) if not value.instance]:
                return found
            # `from m import x` where x is no node (a variable): the edge goes to module m
            module = reference.name.rpartition(".")[0]
            return [v for v in self._imported(module, file.file_id) if v.node.kind == "module"]
        if reference.kind in ("inherits", "annotates"):
            return self._types(self._expression(reference.name, source, file))
        if not file.rules.by_scope:
            return self._by_name(reference.name, file)
        parts = reference.name.split(".")
        hint = reference.hint
        if hint in (f.SELF, f.SUPER):
            owner = self._enclosing_type(source)
            if owner is None:
                return []
            if hint == f.SELF:
                values = [_Value(owner, True, SELF_MEMBER)]
            else:
                values = [_Value(base.node, True, base.confidence) for base in self._bases(owner)]
            return self._members(values, parts[1:])
        if hint:  # the receiver's type: what follows the receiver in the name are members
            receivers = self._instances(self._type_expression(hint, source, file), TYPED_RECEIVER)
            constructed = hint + "()."  # `C().m()`
            name = reference.name
            members = name[len(constructed):] if name.startswith(constructed) else name.partition(".")[2]
            return self._members(receivers, members.split("."))
        return self._expression(reference.name, source, file)

    def _edges(self, reference: ReferenceInfo, values: list[_Value], file: FileInfo, source: NodeInfo) -> list[Target]:
        wanted = _WANTED.get(reference.kind)
        best: dict[int, float] = {}
        for value in values:
            node = value.node
            if node.kind == "package" or (wanted is not None and (node.kind not in wanted or value.instance)):
                continue
            best[node.id] = max(best.get(node.id, 0.0), value.confidence)
        by_name = not file.rules.by_scope and reference.kind == "calls"
        if not best and reference.kind in _IN_REPOSITORY_ONLY:
            return []
        if not best or (by_name and len(best) > MAX_CANDIDATES):
            return [(None, self._external_name(reference, source, file), EXACT)]
        if reference.arguments is not None and len(best) > 1:
            best = self._overloads(best, reference.arguments)
        share = len(best)
        return [(node_id, None, round(confidence / share, 4)) for node_id, confidence in sorted(best.items())]

    def _overloads(self, best: dict[int, float], arguments: int) -> dict[int, float]:
        """The overloads a call's argument count fits, fixed arity before varargs (Java's order); all of them
        when none fits (the count cannot tell, or the targets are no overloads)."""
        fixed: dict[int, float] = {}
        varargs: dict[int, float] = {}
        for node_id, confidence in best.items():
            arity = f.java_arity(self.table.nodes[node_id].name_path)
            if arity is None:
                continue
            count, last_is_array = arity
            if count == arguments:
                fixed[node_id] = confidence
            elif last_is_array and arguments >= count - 1:
                varargs[node_id] = confidence
        return fixed or varargs or best

    def _external_name(self, reference: ReferenceInfo, source: NodeInfo, file: FileInfo) -> str:
        """The name as written, with a leading imported name replaced by what it imports."""
        name = reference.name
        if reference.kind == "imports" or not _DOTTED.match(name) or reference.hint in (f.SELF, f.SUPER):
            return name
        head, dot, rest = name.partition(".")
        for scope in self._scopes(source, file):
            for binding in self._bindings(scope, head, file.file_id):
                if binding.kind in (f.IMPORT, f.EXTERNAL_NAME, f.GO_PACKAGE):
                    return binding.target + dot + rest
        if reference.kind == "calls" and file.rules.python_imports and head in f.PYTHON_BUILTINS:
            raise _Drop
        return name

    # -- expressions and names

    def _expression(self, text: str, source: NodeInfo, file: FileInfo) -> list[_Value]:
        """What a dotted name names, with calls in it (`make().run`) followed through what they return."""
        if not _CALLED_DOTTED.match(text):
            return []
        head, *rest = text.split(".")
        called = head.endswith("()")
        values = self._name(head.removesuffix("()"), source, file)
        return self._members(self._instances(values, EXACT) if called else values, rest)

    def _type_expression(self, text: str, source: NodeInfo, file: FileInfo) -> list[_Value]:
        """What a type expression names; a union's (`A|B`, facts.UNION) members each, their confidence scaled by
        the share of members that name something (`str|Request`: half), so a member left unknown is no guess."""
        if f.UNION not in text:
            return self._expression(text, source, file)
        found = [self._expression(member, source, file) for member in text.split(f.UNION)]
        share = sum(1 for values in found if values) / len(found)
        return [_Value(v.node, v.instance, round(v.confidence * share, 6)) for values in found for v in values]

    def _members(self, values: list[_Value], names: list[str]) -> list[_Value]:
        for name in names:
            items = name.endswith(f.ITEMS)  # `xs[]`, `f()[]`: an element of what xs holds or f returns
            name = name.removesuffix(f.ITEMS)
            called = name.endswith("()")
            name = name.removesuffix("()")
            values = [
                _Value(member.node, member.instance, round(value.confidence * member.confidence, 6))
                for value in values
                for member in self._member(value.node, name + (f.ITEMS if items and not called else ""))
            ]
            if called and items:
                values = [_Value(r.node, True, round(r.confidence * v.confidence * RETURNED, 6))
                          for v in values if v.node.kind in _FUNCTION_KINDS and not v.instance
                          for r in self._memoised(("items", v.node.id), self._returned_items, v.node)]
            elif called:  # `a.b().c`: what b returns, or an instance of the class b is
                values = self._instances(values, EXACT)
        return values

    def _returned_items(self, function: NodeInfo) -> list[_Value]:
        """The element types of what a function returns (`-> list[T]`, `-> Iterator[T]`)."""
        file = self.table.files[function.file_id]
        return [value for binding in self._bindings(function.name_path, f.RETURNS + f.ITEMS, function.file_id)
                for value in self._types(self._type_expression(binding.target, function, file))]

    def _scopes(self, source: NodeInfo, file: FileInfo) -> list[str]:
        """Where a name used in `source` is bound: the function itself (local imports), then the module."""
        return [source.name_path, file.module] if source.kind in _FUNCTION_KINDS else [file.module]

    def _name(self, name: str, source: NodeInfo, file: FileInfo) -> list[_Value]:
        if source.kind in _FUNCTION_KINDS and (bound := self._bindings(source.name_path, name, file.file_id)):
            return self._follow(bound)
        if file.rules.implicit_this:
            for owner in self._enclosing_types(source, file):
                if members := self._member(owner, name):
                    return [_Value(v.node, v.instance, v.confidence * SELF_MEMBER) for v in members]
        if file.rules.names_in_package:
            found = [n for n in self._nodes(f"{file.namespace}.{name}")
                     if not file.rules.package_is_folder or self._same_package(n, file)]
        else:
            found = [n for n in self._nodes(f"{file.module}.{name}") if n.file_id == file.file_id]
        if found:
            return [_Value(node, False, EXACT) for node in found]
        if bound := self._bindings(file.module, name, file.file_id):
            return self._follow(bound)
        return self._star_members(file.module, file.file_id, name)

    def _follow(self, bindings: list[BindingInfo]) -> list[_Value]:
        values: list[_Value] = []
        for binding in bindings:
            if binding.kind == f.IMPORT:
                values += self._commonjs(self._imported(binding.target, binding.file_id))
            elif binding.kind == f.GO_PACKAGE:
                package = NodeInfo(0, 0, "package", f.go_package_name(binding.target), binding.target)
                values.append(_Value(package, False, EXACT))
            elif binding.kind == f.INSTANCE:
                values += self._memoised(
                    ("instance", binding.scope_id, binding.target), self._instance_binding, binding
                )
            elif binding.kind == f.ALIAS:
                values += self._memoised(("alias", binding.scope_id, binding.target), self._alias_binding, binding)
            elif binding.kind == f.EXTERNAL_NAME:  # a bare specifier: a TS path alias? (looked up even with no
                # config, so that adding one resolves the file again)
                file = self.table.files[binding.file_id]
                values += self._commonjs(self._ts_aliased(binding.target, file))
            elif binding.kind == f.PARAMETER:
                values += self._memoised(("parameter", binding.scope_id, binding.target),
                                         self._parameter_binding, binding)
        return values

    def _ts_aliased(self, name: str, file: FileInfo) -> list[_Value]:
        """A bare import specifier, with a name imported from it (`@app/models.Repo`), through the `paths` of the
        nearest TS config above the file: the first pattern and path that name something in the repository."""
        if not file.rules.es_modules:
            return []
        self._touch(_TS_PATHS_KEY)
        folder = None
        for config_folder, pattern, paths in self.table.ts_paths:
            if folder is not None and config_folder != folder:
                break  # only the nearest config applies
            if config_folder and not (file.directory + "/").startswith(config_folder + "/"):
                continue
            folder = config_folder
            prefix, star, suffix = pattern.partition("*")
            if star:
                if not name.startswith(prefix) or suffix:  # `*.js`-style suffixes are not followed
                    continue
                matched = name[len(prefix):]
            elif name == pattern or name.startswith(pattern + "."):
                matched = name[len(pattern):]
            else:
                continue
            for path in paths:
                stem = path.replace("*", matched) if star else _without_extension(path) + matched
                if found := self._imported(stem.replace("/", "."), file.file_id):
                    return found
        return []

    def _parameter_binding(self, binding: BindingInfo) -> list[_Value]:
        """`self.x = p` in a class's __init__ from an untyped parameter: instances of the types the class's
        constructor calls pass as p (CONSTRUCTOR_ARGUMENT); several types are all kept, so their edges split."""
        owner = self.table.nodes[binding.scope_id]
        position, _, parameter = binding.target.partition(";")
        name = f.CONSTRUCTS + owner.name
        self._touch(name)
        values: list[_Value] = []
        for argument in self.table.constructions.get(name, _NONE):
            callee, key, type_name = argument.target.split(";", 2)
            if key not in (position, parameter):
                continue
            caller = self.table.nodes[argument.scope_id]
            file = self.table.files[argument.file_id]
            if any(v.node.id == owner.id and not v.instance for v in self._expression(callee, caller, file)):
                values += self._instances(self._type_expression(type_name, caller, file), CONSTRUCTOR_ARGUMENT)
        return values

    def _commonjs(self, values: list[_Value]) -> list[_Value]:
        """A JavaScript module bound whole (`const C = require('./c')`) is what it assigns to module.exports."""
        found: list[_Value] = []
        for value in values:
            node = value.node
            exports = (self._bindings(node.name_path, f.MODULE_EXPORTS, node.file_id)
                       if node.kind == "module" and self.table.files[node.file_id].rules.es_modules else None)
            found += self._follow(exports) if exports else [value]
        return found

    def _alias_binding(self, binding: BindingInfo) -> list[_Value]:
        """`name = expression` in a module or class body: what the expression names there."""
        scope = self.table.nodes[binding.scope_id]
        module = self._module_of(scope)
        return self._expression(binding.target, module, self.table.files[module.file_id])

    def _instance_binding(self, binding: BindingInfo) -> list[_Value]:
        scope = self.table.nodes[binding.scope_id]
        if scope.kind in TYPE_KINDS:  # `self.x = C()` in a method, or a class-level `x: C`: module names
            scope = self._module_of(scope)
        file = self.table.files[scope.file_id]
        return self._instances(self._type_expression(binding.target, scope, file), TYPED_RECEIVER)

    def _imported(self, name: str, file_id: int) -> list[_Value]:
        """What an import in a file names: an absolute name, else the same name under the file's folders
        without `__init__.py` (see _import_folders)."""
        if found := self._qualified(name):
            return found
        for folder in self.table.import_folders.get(file_id, ()):
            if found := self._qualified(f"{folder}.{name}"):
                return found
        return []

    def _qualified(self, name: str) -> list[_Value]:
        """An absolute dotted name: a node, or a member of what its prefix resolves to."""
        return self._memoised(("qualified", name), self._qualified_uncached, name)

    def _qualified_uncached(self, name: str) -> list[_Value]:
        if found := self._nodes(name) or self._js_index(name):
            return [_Value(node, False, EXACT) for node in found]
        head, _, last = name.rpartition(".")
        if not head:
            return []
        return self._members(self._qualified(head), [last])

    def _modules(self, name: str) -> list[NodeInfo]:
        return [n for n in self._nodes(name) if n.kind == "module"] or self._js_index(name)

    def _js_index(self, name: str) -> list[NodeInfo]:
        """JS `./dir` is `./dir/index`."""
        index = [n for n in self._nodes(name + ".index") if n.kind == "module"]
        return index if index and self.table.files[index[0].file_id].rules.es_modules else []

    def _member(self, node: NodeInfo, name: str) -> list[_Value]:
        if node.kind == "module":
            return self._memoised(("module", node.id, name), self._module_member, node, name)
        if node.kind in TYPE_KINDS:
            return self._memoised(("type", node.id, name), self._type_member, node, name)
        if node.kind == "package":
            return self._package_member(node, name)
        return []

    def _module_member(self, module: NodeInfo, name: str) -> list[_Value]:
        if found := self._nodes(f"{module.name_path}.{name}"):
            return [_Value(node, False, EXACT) for node in found]
        if bound := self._bindings(module.name_path, name, module.file_id):
            return self._follow(bound)
        return self._star_members(module.name_path, module.file_id, name)

    def _star_members(self, scope: str, file_id: int, name: str) -> list[_Value]:
        """`name` through the scope's star imports: defined in what a star names (a module, a Java package or
        type), or bound or star-imported by a module it names. A star target is never looked up as a member of
        something else: with targets outside the repository, that search would try every order of the stars."""
        values: list[_Value] = []
        for star in self._bindings(scope, "*", file_id):
            if found := self._nodes(f"{star.target}.{name}"):
                values += [_Value(node, False, EXACT) for node in found]
            else:
                for module in self._modules(star.target):
                    values += self._member(module, name)
        return values

    def _type_member(self, owner: NodeInfo, name: str) -> list[_Value]:
        found = [n for n in self._nodes(f"{owner.name_path}.{name}") if self._same_unit(n, owner)]
        if found:
            return [_Value(node, False, EXACT) for node in found]
        if bound := self._bindings(owner.name_path, name, owner.file_id):
            # what the class says (an annotation, `self.x = C()`) wins over what its callers pass
            return self._follow([b for b in bound if b.kind != f.PARAMETER] or bound)
        bases = self._bases(owner)
        if embedded := [base for base in bases if base.node.name == name and self._embeds(owner)]:
            return embedded  # Go: an embedded struct is also a field named by its type (`i.Base.Save()`)
        for base in bases:
            if inherited := self._member(base.node, name):
                return [_Value(v.node, v.instance, v.confidence * base.confidence) for v in inherited]
        return []

    def _bases(self, owner: NodeInfo) -> list[_Value]:
        return self._memoised(("bases", owner.id), self._bases_uncached, owner)

    def _bases_uncached(self, owner: NodeInfo) -> list[_Value]:
        """The resolved bases, in declaration order; their expressions name things at module level."""
        module = self._module_of(owner)
        file = self.table.files[owner.file_id]
        values: list[_Value] = []
        for expression in self.table.bases.get(owner.id, ()):
            for base in self._types(self._expression(expression, module, file)):
                values.append(_Value(base.node, True, base.confidence * INHERITED))
        return values

    def _package_member(self, package: NodeInfo, name: str) -> list[_Value]:
        """A Go package's name: nodes named `pkg.name` in a directory that ends the import path."""
        found = [
            node
            for node in self._nodes(f"{package.name}.{name}")
            if _ends_path(package.name_path, self.table.files[node.file_id].directory)
        ]
        return [_Value(node, False, EXACT) for node in found]

    def _package_modules(self, import_path: str) -> list[NodeInfo]:
        parts = import_path.split("/")
        modules: list[NodeInfo] = []
        for start in range(len(parts)):
            directory = "/".join(parts[start:])
            self._touch("dir:" + directory)
            modules += self.table.modules_by_dir.get(directory, [])
        return modules

    def _module_of(self, node: NodeInfo) -> NodeInfo:
        return self.table.nodes[chunk_id(node.file_id, f.MODULE_ORDINAL)]

    def _enclosing_type(self, source: NodeInfo) -> NodeInfo | None:
        if source.kind != "method":
            return None
        parent = source.name_path.rpartition(".")[0]
        found = [n for n in self._nodes(parent) if n.kind in TYPE_KINDS and self._same_unit(n, source)]
        return found[0] if len(found) == 1 else None

    def _enclosing_types(self, source: NodeInfo, file: FileInfo) -> list[NodeInfo]:
        """Java: the types around `source`, innermost first."""
        owners: list[NodeInfo] = []
        if source.kind == "module":
            return owners
        path = source.name_path if source.kind in TYPE_KINDS else source.name_path.rpartition(".")[0]
        while path and path != file.namespace:
            owners += [n for n in self._nodes(path) if n.kind in TYPE_KINDS and n.file_id == file.file_id]
            path = path.rpartition(".")[0]
        return owners

    def _by_name(self, name: str, file: FileInfo) -> list[_Value]:
        *qualifiers, last = name.split(".")
        self._touch("~" + last)
        candidates = [n for n in self.table.by_name.get(last, ()) if n.kind in CALLABLE_KINDS]
        if qualifiers and (qualified := [n for n in candidates if n.name_path.endswith(f".{qualifiers[-1]}.{last}")]):
            candidates = qualified
        if same_file := [n for n in candidates if n.file_id == file.file_id]:
            candidates = same_file
        return [_Value(node, False, BY_NAME) for node in candidates]

    # -- helpers

    def _types(self, values: list[_Value]) -> list[_Value]:
        return [value for value in values if value.node.kind in TYPE_KINDS and not value.instance]

    def _instances(self, values: list[_Value], factor: float) -> list[_Value]:
        """Instances of the types among values, of what the functions among them return (RETURNED), and the
        instances among them (an expression naming a typed attribute or global)."""
        found = [_Value(v.node, True, v.confidence * factor) for v in values
                 if v.node.kind in TYPE_KINDS]
        for value in values:
            if value.node.kind in _FUNCTION_KINDS and not value.instance:
                found += [_Value(r.node, True, round(r.confidence * value.confidence * factor * RETURNED, 6))
                          for r in self._memoised(("returns", value.node.id), self._returns, value.node)]
        return found

    def _returns(self, function: NodeInfo) -> list[_Value]:
        """The types a function is known to return: its RETURNS bindings (annotation, or `return self`)."""
        file = self.table.files[function.file_id]
        return [value for binding in self._bindings(function.name_path, f.RETURNS, function.file_id)
                for value in self._types(self._type_expression(binding.target, function, file))]

    def _same_unit(self, node: NodeInfo, owner: NodeInfo) -> bool:
        """Members of a type live in its file; in Go, anywhere in its package (directory)."""
        if node.file_id == owner.file_id:
            return True
        owner_file = self.table.files[owner.file_id]
        return owner_file.rules.package_is_folder and self._same_package(node, owner_file)

    def _embeds(self, node: NodeInfo) -> bool:
        return self.table.files[node.file_id].rules.embedded_fields

    def _same_package(self, node: NodeInfo, file: FileInfo) -> bool:
        return self.table.files[node.file_id].directory == file.directory

    def _nodes(self, name_path: str) -> list[NodeInfo]:
        self._touch(name_path)
        return self.table.by_path.get(name_path, _NONE)

    def _bindings(self, scope: str, name: str, file_id: int) -> list[BindingInfo]:
        self._touch(f"{scope}.{name}")
        return self.table.bindings.get((scope, name, file_id), _NONE)

    def _touch(self, key: str) -> None:
        """Record a looked-up name, hashed once per resolver."""
        hashed = self._key_hashes.get(key)
        if hashed is None:
            hashed = self._key_hashes[key] = name_key(key)
        self._deps[-1].add(hashed)

    def _memoised(self, key: tuple[object, ...], compute: Callable[..., list[_Value]], *args: object) -> list[_Value]:
        """compute(*args), memoised with the names it looked up; a cycle yields nothing at the point it closes."""
        hit = self._memo.get(key)
        if hit is not None:
            self._deps[-1].update(hit[1])
            return hit[0]
        self._steps += 1
        if key in self._active or self._steps > MAX_STEPS:  # a cycle, or a search too wide to finish
            self._cuts += 1
            return []
        cuts = self._cuts
        self._active.add(key)
        self._deps.append(set())
        try:
            values = compute(*args)
        finally:
            self._active.discard(key)
            deps = self._deps.pop()
            self._deps[-1].update(deps)
        if self._cuts == cuts:
            self._memo[key] = (values, frozenset(deps))
        return values


def _without_extension(path: str) -> str:
    stem, dot, extension = path.rpartition(".")
    return stem if dot and "/" not in extension and f"{dot}{extension}" in f.JS_EXTENSIONS else path


def _ends_path(import_path: str, directory: str) -> bool:
    return bool(directory) and (import_path == directory or import_path.endswith("/" + directory))

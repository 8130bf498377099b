"""Graph facts of one file, extracted in the worker from the chunker's parse tree: its nodes and raw references.

Nodes are the file's definitions (one per distinct name path among its symbol chunks, so a chunk split into
parts is one node) plus a module node. References are recorded as written; resolve.py turns them into edges
once the whole repository is known. One tree-sitter query per language collects everything in one pass in C;
Python only looks at the captures, so the cost is proportional to the number of calls, not of tree nodes.
"""

from __future__ import annotations

import bisect
import builtins
import functools
import json
import math
import operator
import posixpath
import re
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field

from tree_sitter import Node, Query, QueryCursor, Tree

from lode.chunking.treesitter import _language
from lode.languages import LANGUAGES
from lode.languages.base import CONTAINER_KINDS
from lode.model import MODULE_ORDINAL, ChunkedFile

NOT_SYMBOLS = frozenset({"module", "window"})
PYTHON_BUILTINS = frozenset(dir(builtins))

# Reference.hint values besides a type expression
SELF = "@self"  # the call's first name is the enclosing type's instance (self, cls, this, a Go receiver)
SUPER = "@super"  # the call goes to the enclosing type's bases (super().m, super.m)
EXTERNAL = "@external"  # imports: a package outside the repository (JS bare specifier)
PACKAGE = "@package"  # imports: a Go import path

# Binding.kind values
IMPORT = "import"  # target: an absolute qualified name (a module or a symbol)
STAR = "star"  # target: a module whose names are all bound (Python `import *`, JS `export *`, Java `.*`)
INSTANCE = "instance"  # target: a type expression; the name holds an instance of it (of what a function returns)
ALIAS = "alias"  # target: an expression in the scope's module; the name is what it names (`response_class = R`)
PARAMETER = "parameter"  # on a class: `self.x = p` in __init__ from an untyped parameter; target "position;name"
ARGUMENT = "argument"  # a constructor call's typed argument: name CONSTRUCTS + class name, target ARGUMENT_TARGET
CONSTRUCTS = "@new:"  # prefix of an ARGUMENT binding's name: the called class's last name
# ARGUMENT target: "callee;key;type": the callee as written in the binding's scope, the argument's position
# (0 is the first after self) or keyword, and the type expression of its value (what `x = value` would hold)
RETURNS = "@return"  # the name of an INSTANCE binding on a function: what it returns
ITEMS = "[]"  # appended to a name: the elements of what it holds (`xs: list[T]` binds `xs[]` to T)
EXTERNAL_NAME = "external"  # target: a name outside the repository
GO_PACKAGE = "package"  # target: a Go import path


@dataclass(slots=True)
class Symbol:
    """A graph node: a definition (its first chunk's ordinal) or the module (MODULE_ORDINAL)."""

    ordinal: int
    kind: str
    name: str
    name_path: str
    start_line: int
    end_line: int
    guard: str | None = None  # Chunk.guard: the if/try/with deciding whether the definition exists


@dataclass(slots=True)
class Binding:
    """A name bound in a scope by an import or an assignment, visible to other files' resolution."""

    scope: int  # index into FileFacts.symbols
    name: str
    target: str
    kind: str  # IMPORT | STAR | INSTANCE | EXTERNAL_NAME | GO_PACKAGE
    line: int


@dataclass(slots=True)
class Reference:
    kind: str  # calls | imports | inherits | annotates | decorates
    source: int  # index into FileFacts.symbols: the enclosing definition, or 0 for the module
    name: str  # as written (calls, inherits) or the absolute target (imports)
    line: int
    hint: str | None = None  # calls: SELF, SUPER or the receiver's type expression; imports: EXTERNAL, PACKAGE
    arguments: int | None = None  # calls: how many arguments, where overloads are told apart by it (Java)


@dataclass(slots=True)
class FileFacts:
    path: str
    language: str
    module: str
    namespace: str  # the prefix of the file's name paths: the module, or the Go/Java package
    symbols: list[Symbol]  # symbols[0] is the module node
    bindings: list[Binding] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)


class FactsTimeout(Exception):
    """The references of a file took longer than their budget (extract_facts' timeout_seconds)."""


# when the extraction running in this context must stop: checked after the query and per capture (_File.text)
_DEADLINE: ContextVar[float] = ContextVar("graph_facts_deadline", default=math.inf)


def _past_deadline() -> bool:
    return time.monotonic() >= _DEADLINE.get()


# Matches start no deeper than this in the tree. Real code nests a few hundred levels at most; tree-sitter's query
# cursor slows down quadratically past ~65,000 levels and crashes soon after, and its progress callback crashes
# when it cancels (py-tree-sitter 0.26), so the depth is the query's budget and the deadline is checked per capture.
_MAX_START_DEPTH = 10_000


def extract_facts(
    path: str, text: str, language: str, module: str, chunked: ChunkedFile, tree: Tree | None,
    timeout_seconds: float = math.inf,
) -> FileFacts:
    """The graph facts of one chunked file. `tree` is the parse chunk_file_with_tree returned, or None (the
    nodes only). FactsTimeout when reading the references takes longer than `timeout_seconds`."""
    data = text.encode("utf-8", "surrogatepass")  # the same byte offsets as the chunker's parse
    line_count = data.count(b"\n") + 1
    symbols, by_path, owners = _symbols(chunked, module, data, line_count)
    facts = FileFacts(path, language, module, module, symbols)
    if tree is not None:
        record = LANGUAGES.get(language)
        extract = _READERS.get(record.facts_reader, _extract_by_name) if record else _extract_by_name
        deadline = _DEADLINE.set(time.monotonic() + timeout_seconds)
        try:
            extract(_File(facts, data, owners, by_path), tree.root_node)
        except FactsTimeout:
            raise FactsTimeout(f"{language} graph facts exceeded {timeout_seconds:g}s "
                               f"({len(facts.references)} references read)") from None
        finally:
            _DEADLINE.reset(deadline)
    elif posixpath.basename(path) in TS_CONFIGS:
        _ts_paths(facts, text)
    return facts


def _symbols(
    chunked: ChunkedFile, module: str, data: bytes, line_count: int
) -> tuple[list[Symbol], dict[str, int], _Owners]:
    """The file's nodes, their indexes by name path, and where each of them lies. A definition's parts are one
    node; variants under different guards (`if win: def f` / `else: def f`) are one node each."""
    module_name = module.rpartition(".")[2] or module
    symbols = [Symbol(MODULE_ORDINAL, "module", module_name, module, 1, line_count)]
    index: dict[str, int] = {}
    variants: dict[tuple[str, str | None], int] = {}
    spans: list[_Span] = []
    record = LANGUAGES.get(chunked.language)
    overloaded = _java_overloads(chunked) if record and record.resolution.overloads else set()
    for ordinal, chunk in enumerate(chunked.chunks):
        name_path = chunk.name_path
        if not name_path or chunk.kind in NOT_SYMBOLS:
            continue
        if name_path in overloaded and chunk.signature:
            name_path += java_parameters(chunk.signature)
        start_line, end_line = chunk.start_line, chunk.end_line
        position = variants.get((name_path, chunk.guard))
        if position is None:
            position = variants[name_path, chunk.guard] = len(symbols)
            index.setdefault(name_path, position)  # the first variant holds the members of a guarded type
            symbols.append(Symbol(ordinal, chunk.kind, chunk.name or "", name_path, start_line, end_line, chunk.guard))
        else:
            symbol = symbols[position]
            symbol.start_line = min(symbol.start_line, start_line)
            symbol.end_line = max(symbol.end_line, end_line)
        # inner definitions sort after outer ones; the ordinal keeps ties in chunk order
        spans.append(
            (start_line - 1, 1 - end_line, name_path.count("."), ordinal, chunk.start_byte, chunk.end_byte, position)
        )
    return symbols, {module: 0} | index, _Owners(spans, data, line_count)


def _java_overloads(chunked: ChunkedFile) -> set[str]:
    """The name paths of Java methods and constructors declared with more than one parameter list: each
    overload is a node of its own, named with its parameter types (`Repo.save(String,int)`)."""
    signatures: dict[str, set[str]] = {}
    for chunk in chunked.chunks:
        if chunk.kind == "method" and chunk.name_path and chunk.signature:
            signatures.setdefault(chunk.name_path, set()).add(java_parameters(chunk.signature))
    return {name_path for name_path, found in signatures.items() if len(found) > 1}


_JAVA_GENERICS = re.compile(r"<[^<>]*>")
_JAVA_ANNOTATION = re.compile(r"@[\w.]+(?:\([^()]*\))?\s*")


def java_parameters(signature: str) -> str:
    """`void save(final java.util.List<String> a, int... b)` -> `(List,int[])`: the simple type names, varargs
    as the array they are (no dots: name paths split on them)."""
    inside = signature[signature.find("(") + 1 : signature.rfind(")")]
    while (simpler := _JAVA_GENERICS.sub("", inside)) != inside:
        inside = simpler
    types = []
    for parameter in _JAVA_ANNOTATION.sub("", inside).replace("...", "[] ").split(","):
        words = parameter.replace("final ", "").split()
        if len(words) >= 2:  # the type, then the name
            types.append("".join(words[:-1]).rpartition(".")[2])
    return f"({','.join(types)})"


def java_arity(name_path: str) -> tuple[int, bool] | None:
    """(parameters, whether the last may be varargs: an array) of an overload's name path; None for others."""
    if not name_path.endswith(")") or "(" not in name_path:
        return None
    inside = name_path[name_path.rfind("(") + 1 : -1]
    count = inside.count(",") + 1 if inside else 0
    return count, inside.endswith("[]")


# (first row, -last row, depth, chunk ordinal, start byte, end byte, symbol index): sorted, outer spans first
_Span = tuple[int, int, int, int, int, int, int]


class _Owners:
    """The innermost node around a position: looked up by line, or by byte on the few lines that two
    definitions share (`class A { m() {} n() {} }`)."""

    def __init__(self, spans: list[_Span], data: bytes, line_count: int) -> None:
        spans.sort()
        self.by_row = by_row = [0] * (line_count + 1)
        shared_rows: set[int] = set()
        for first_row, negative_last_row, _, _, start, end, symbol in spans:
            last_row = -negative_last_row
            by_row[first_row : last_row + 1] = [symbol] * (last_row - first_row + 1)
            if data[data.rfind(b"\n", 0, start) + 1 : start].strip():
                shared_rows.add(first_row)
            line_end = data.find(b"\n", end)
            if data[end : line_end if line_end >= 0 else len(data)].strip():
                shared_rows.add(last_row)
        # per shared row, (start byte, end byte, symbol index) of the spans on it, outer spans first
        self.shared = {
            row: [(span[4], span[5], span[6]) for span in spans if span[0] <= row <= -span[1]] for row in shared_rows
        }

    def __call__(self, node: Node) -> int:
        return self.at(node.start_point.row, node.start_byte)

    def at(self, row: int, offset: int) -> int:
        """The owner of the position `offset` (a byte), which is on `row`."""
        spans = self.shared.get(row)
        if spans is None:
            return self.by_row[row]
        owner = 0
        for start, end, symbol in spans:
            if start <= offset < end:
                owner = symbol
        return owner


class _File:
    """The per-file state the extractors share."""

    def __init__(self, facts: FileFacts, data: bytes, owner: _Owners, by_path: dict[str, int]) -> None:
        self.facts = facts
        self.data = data
        self.owner = owner  # owner(node): the index of the symbol around a node
        self.by_path = by_path
        self.symbols = facts.symbols
        # receiver types of local names: (scope, name) -> [(byte offset from which it holds, type expression)]
        self.locals: dict[tuple[int, str], list[tuple[int, str]]] = {}

    def text(self, node: Node) -> str:
        """The node's source; every extractor reads each capture through here, so the deadline is checked here."""
        if _past_deadline():
            raise FactsTimeout
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def enclosing_type(self, scope: int) -> int | None:
        """The symbol index of the type a method belongs to, when it is in this file."""
        symbol = self.symbols[scope]
        if symbol.kind != "method":
            return None
        return self.by_path.get(symbol.name_path.rpartition(".")[0])

    def bind(self, scope: int, name: str, target: str, kind: str, line: int) -> None:
        self.facts.bindings.append(Binding(scope, name, target, kind, line))

    def refer(self, kind: str, source: int, name: str, line: int, hint: str | None = None) -> None:
        self.facts.references.append(Reference(kind, source, name, line, hint))

    def assign(self, node: Node, name: str, type_name: str | None, self_names: frozenset[str]) -> None:
        """After `node`, `name` (an identifier or `self.x`) holds an instance of `type_name`."""
        if not type_name:
            return
        row = node.start_point.row
        scope = self.owner.at(row, node.start_byte)
        head, dot, attribute = name.partition(".")
        if dot:
            owner_type = self.enclosing_type(scope)
            if head in self_names and "." not in attribute and owner_type is not None:
                self.bind(owner_type, attribute, type_name, INSTANCE, row + 1)
        elif self.symbols[scope].kind in ("function", "method"):
            self.locals.setdefault((scope, name), []).append((node.end_byte, type_name))
        else:  # module or type body: visible to other files
            self.bind(scope, name, type_name, INSTANCE, row + 1)

    def local_type(self, scope: int, name: str, offset: int) -> str | None:
        """The type expression a function's local name holds at `offset`, if known."""
        assigned = self.locals.get((scope, name))
        before = [item for item in assigned if item[0] <= offset] if assigned else None
        return max(before)[1] if before else None

    def type_name_of(self, scope: int) -> str | None:
        """The name the type around method `scope` has in its module's scope (`Outer.Inner`)."""
        owner = self.enclosing_type(scope)
        if owner is None:
            return None
        return self.symbols[owner].name_path.removeprefix(self.facts.namespace + ".")

    def value_type(self, node: Node, expression: str, self_names: frozenset[str]) -> str | None:
        """The type expression of what `expression` names or (a callee) returns, at `node`: its head replaced by
        the type a local or `self` is known to hold (`s.copy` with s: Session -> `Session.copy`); None when the
        head is a local of unknown type."""
        scope = self.owner(node)
        head, dot, rest = expression.partition(".")
        if self.symbols[scope].kind not in ("function", "method"):
            return expression
        if head in self_names:
            type_name = self.type_name_of(scope)
            return f"{type_name}{dot}{rest}" if type_name else None
        if (scope, head) in self.locals:
            known = self.local_type(scope, head, node.start_byte)
            return member_type(known, dot + rest) if known else None
        return expression

    def call(self, node: Node, name: str, self_names: frozenset[str], hinted_only: bool = False,
             scope: int | None = None, arguments: int | None = None) -> None:
        """Record a call of `name` (a normalised callee) at `node`, with what is known of its receiver; with
        hinted_only (a builtin's name), only when something is known of it. `scope` overrides its owner."""
        row = node.start_point.row
        offset = node.start_byte
        if scope is None:
            scope = self.owner.at(row, offset)
        hint: str | None = None
        if "." in name:
            head = name.partition(".")[0]
            if head in self_names and self.symbols[scope].kind == "method":
                hint = SELF
            elif head in _SUPER_NAMES:
                hint = SUPER
            elif (scope, head) in self.locals:
                hint = self.local_type(scope, head, offset)
            elif "()." in name and (constructed := _CONSTRUCTED.match(name)):  # `C().m()`, `new C().m()`
                hint = constructed.group(1)
        if hint is not None or not hinted_only:
            self.facts.references.append(Reference("calls", scope, name, row + 1, hint, arguments))


_PYTHON_SELF = frozenset({"self", "cls"})
_THIS = frozenset({"this"})
_SUPER_NAMES = frozenset({"super()", "super"})
_NO_NAMES: frozenset[str] = frozenset()
_CONSTRUCTED = re.compile(r"([A-Za-z_$][\w$.]*)\(\)\.[\w$#]+\Z")
_NEW = re.compile(r"\bnew\s+")
_SUPER_CALL = re.compile(r"super\([^()]*\)\.")
_DOTTED = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$#][\w$]*)*\Z")
_SPAN = operator.attrgetter("start_byte", "end_byte")  # nested callees can start at the same byte
_SPACE = re.compile(r"\s+")
_TIGHT = re.compile(r"\s+(?=[.()\[\],])|(?<=[.()\[\],])\s+")  # whitespace around punctuation goes
_ARGUMENTS = re.compile(r"\((?:[^()]|\(\))+\)")
_MAX_RAW = 120


def _callee(text: str) -> str:
    """A callee as a dotted name when it is one, else its text with whitespace collapsed, truncated."""
    if _DOTTED.match(text):
        return text
    text = _SPACE.sub(" ", _TIGHT.sub("", _NEW.sub("", text))).replace("?.", ".")
    text = _SUPER_CALL.sub("super().", text, count=1)
    if text.startswith(("super().", "super.")) or _DOTTED.match(text):
        return text
    while (shorter := _ARGUMENTS.sub("()", text)) != text:  # `a(x).b(y).c` -> `a().b().c`
        text = shorter
    return text[:_MAX_RAW]


def _first(node: Node) -> Node | None:
    """The first named child (Node.named_child raises past the end)."""
    return node.named_children[0] if node.named_child_count else None


@functools.cache
def _query(language: str, source: str) -> Query:
    return Query(_language(language), source)


def _captures(language: str, source: str, root: Node) -> dict[str, list[Node]]:
    """The nodes each capture of the language's query matched, by capture name, in source order (the
    cursor's order varies from run to run)."""
    cursor = QueryCursor(_query(language, source))
    cursor.set_max_start_depth(_MAX_START_DEPTH)
    found = cursor.captures(root)
    if _past_deadline():
        raise FactsTimeout
    return {name: sorted(nodes, key=_SPAN) for name, nodes in found.items()}


# ---- Python -----------------------------------------------------------------------------------------------

_PYTHON_QUERY = """
(call function: [(identifier) (attribute)] @call)
(import_statement) @import
(import_from_statement) @import
(class_definition superclasses: (argument_list) @bases)
(assignment left: [(identifier) (attribute)] right: (call function: [(identifier) (attribute)])) @assign
(assignment left: [(identifier) (attribute)] type: (type)) @assign
(typed_parameter type: (type)) @parameter
(typed_default_parameter type: (type)) @parameter
(function_definition return_type: (type) @returns)
(decorator) @decorator
(with_item value: (as_pattern (call function: [(identifier) (attribute)])
                             alias: (as_pattern_target (identifier)))) @with
(return_statement (identifier) @returned)
(assignment left: [(identifier) (attribute)] right: [(identifier) (attribute)]) @alias
(for_statement left: (identifier)) @for
"""
_PY_CASTS = frozenset({"cast", "t.cast", "typing.cast"})
_PY_SELF_TYPES = frozenset({"Self", "typing.Self", "typing_extensions.Self", "te.Self", "t.Self"})
_PY_ANNOTATION_NAMES = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# `T`, `"T"`, `Optional[T]`, `t.Optional["T"]`, `T | None`: T
_PY_TYPE = re.compile(
    r"""["']?(?:(?:[A-Za-z_]\w*\.)?Optional\[)?["']?([A-Za-z_][\w.]*)["']?\]?(?:\s*\|\s*None)?["']?\Z""")


_PY_UNION = re.compile(r"(?:[A-Za-z_]\w*\.)?(Union|Optional)\[(.*)\]\Z", re.DOTALL)
_PY_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")
UNION = "|"  # between the members of a union type expression (`A|B`); UNKNOWN stands for a member that is no name
UNKNOWN = "?"


def _python_type(text: str) -> str | None:
    """The type expression an annotation gives its name: `T` (also quoted, Optional, `| None`), or a union of
    names (`A | B`, `Union[A, B]`) as `A|B`, with UNKNOWN for members that are no plain name (`A|?`)."""
    text = text.strip()
    if match := _PY_TYPE.match(text):
        return match.group(1)
    members = [member.strip().strip("'\"") for member in _union_members(text.strip("'\""))]
    types = [member if _PY_NAME.match(member) else UNKNOWN for member in members if member != "None"]
    if not types or all(member == UNKNOWN for member in types):
        return None
    return UNION.join(types)


def _union_members(text: str) -> list[str]:
    """The members of `A | B`, `Union[A, B]`, `Optional[Union[A, B]]`, flattened; [] for other text."""
    if match := _PY_UNION.match(text):
        members = _split_top_level(match.group(2), ",") + (["None"] if match.group(1) == "Optional" else [])
    else:
        members = _split_top_level(text, "|")
        if len(members) < 2:
            return []
    return [inner for member in members for inner in (_union_members(member.strip()) or [member])]


def _split_top_level(text: str, separator: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, character in enumerate(text):
        if character in "[(":
            depth += 1
        elif character in "])":
            depth -= 1
        elif character == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def member_type(type_name: str, suffix: str) -> str:
    """`suffix` (`.copy`, `[]`) appended to each member of a type expression: `A|B` -> `A.copy|B.copy`."""
    return UNION.join(member + suffix for member in type_name.split(UNION))


_PY_ITEMS_TYPE = re.compile(
    r"""["']?(?:[A-Za-z_][\w]*\.)*(?:list|List|Sequence|MutableSequence|Iterable|Iterator|Generator|Collection|set|Set|"""
    r"""frozenset|FrozenSet|AbstractSet|MutableSet|deque|tuple|Tuple)\[\s*["']?([A-Za-z_][\w.]*)["']?\s*(?:,[^\[\]]*)?\]"""
    r"""["']?\Z""")


def _python_items_type(text: str) -> str | None:
    """The element type of a container annotation: `list[T]`, `t.Iterator[T]`, `tuple[T, ...]` -> T."""
    match = _PY_ITEMS_TYPE.match(text.strip())
    return match.group(1) if match else None


def _extract_python(file: _File, root: Node) -> None:
    facts = file.facts
    is_package = posixpath.basename(facts.path).startswith("__init__.")
    package = facts.module if is_package else facts.module.rpartition(".")[0]
    found = _captures("python", _PYTHON_QUERY, root)
    for node in found.get("import", ()):
        _python_import(file, node, package)
    for node in found.get("bases", ()):
        # `class D(Base[T])`: the base is Base
        bases = [child.child_by_field_name("value") if child.type == "subscript" else child
                 for child in node.named_children]
        _inherits(file, node, [base for base in bases if base is not None and base.type in ("identifier", "attribute")])
    annotations: list[Node] = list(found.get("returns", ()))
    for node in found.get("parameter", ()):
        annotation = node.child_by_field_name("type")
        name = node.child_by_field_name("name") or _first(node)
        if annotation is not None:
            annotations.append(annotation)
        if annotation is not None and name is not None and name.type == "identifier":
            file.assign(node, file.text(name), _python_type(file.text(annotation)), _PYTHON_SELF)
            file.assign(node, file.text(name) + ITEMS, _python_items_type(file.text(annotation)), _PYTHON_SELF)
    _python_returns(file, found.get("returns", ()), found.get("returned", ()))
    _python_values(file, found)
    # every binding is known by now, so calls of unshadowed builtins are left out as they come
    builtins = _unshadowed_builtins(facts)
    annotations += [a for node in found.get("assign", ()) if (a := node.child_by_field_name("type")) is not None]
    _python_annotations(file, annotations, builtins)
    decorators = _python_decorators(file, found.get("decorator", ()))
    callees: dict[bytes, tuple[str, bool]] = {}  # a file calls the same callees over and over: normalise once
    data = file.data
    for node in found.get("call", ()):
        text = data[node.start_byte : node.end_byte]
        if (callee := callees.get(text)) is None:
            called = _callee(text.decode("utf-8", "replace"))
            callee = callees[text] = (called,
                                      called.partition(".")[0] in builtins and _DOTTED.match(called) is not None)
        called, builtin = callee
        if not (builtin and "." not in called):  # `len(x)`: no hint could keep it
            scope = decorators.enclosing(node.start_byte)
            file.call(node, called, _PYTHON_SELF, hinted_only=builtin, scope=scope)
            last = called.rpartition(".")[2]
            if (last[:1].isupper() or called == "cls") and node.parent is not None and _DOTTED.match(called):
                _python_constructor_arguments(file, node.parent, called,
                                              file.owner(node) if scope is None else scope)


def _python_returns(file: _File, annotations: Sequence[Node], returned: Sequence[Node]) -> None:
    """What functions return, as RETURNS bindings: their return annotation (`Self`: the enclosing class), else
    the enclosing class for a method that returns `self`."""
    annotated: set[int] = set()
    for annotation in annotations:
        function = annotation.parent
        name = function.child_by_field_name("name") if function is not None else None
        scope = file.owner(annotation)
        if name is None or file.symbols[scope].name != file.text(name):
            continue  # a nested function: no node
        text = file.text(annotation).strip().strip("'\"")
        type_name = file.type_name_of(scope) if text in _PY_SELF_TYPES else _python_type(text)
        annotated.add(scope)
        if type_name:
            file.bind(scope, RETURNS, type_name, INSTANCE, annotation.start_point.row + 1)
        elif items := _python_items_type(text):
            file.bind(scope, RETURNS + ITEMS, items, INSTANCE, annotation.start_point.row + 1)
    for node in returned:
        scope = file.owner(node)
        if file.text(node) in _PYTHON_SELF and scope not in annotated and (type_name := file.type_name_of(scope)):
            annotated.add(scope)
            file.bind(scope, RETURNS, type_name, INSTANCE, node.start_point.row + 1)


def _python_values(file: _File, found: dict[str, list[Node]]) -> None:
    """What assignments, `with ... as` and class or module attributes bind, in source order: an instance of a
    type (`x = C()`, `x: C`, `x = s.copy()` through what copy returns, `self.x = given` from a typed local),
    or another name (`response_class = Response` in a class body)."""
    statements = sorted([*found.get("assign", ()), *found.get("with", ()), *found.get("alias", ()),
                         *found.get("for", ())], key=_SPAN)
    done: set[int] = set()
    for node in statements:
        if node.id in done:  # an assignment both patterns matched
            continue
        done.add(node.id)
        if node.type == "with_item":
            pattern = node.child_by_field_name("value")
            if pattern is None:
                continue
            call, alias = _first(pattern), pattern.child_by_field_name("alias")
            function = call.child_by_field_name("function") if call is not None else None
            if function is not None and alias is not None and (target := _first(alias)) is not None:
                manager = file.value_type(node, _callee(file.text(function)), _PYTHON_SELF)
                file.assign(node, file.text(target), member_type(manager, ".__enter__") if manager else None,
                            _PYTHON_SELF)
            continue
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        assert left is not None
        if node.type == "for_statement":  # `for x in xs`: an element of what xs holds or returns
            if right is not None and right.type in ("identifier", "attribute", "call"):
                function = right.child_by_field_name("function") if right.type == "call" else right
                iterated = _callee(file.text(function)) if function is not None else ""
                scope = file.owner(node)
                if (scope, iterated + ITEMS) in file.locals:  # a local or parameter annotated `list[T]`
                    element = file.local_type(scope, iterated + ITEMS, node.start_byte)
                else:
                    container = file.value_type(node, iterated + ("()" if right.type == "call" else ""),
                                                _PYTHON_SELF)
                    element = member_type(container, ITEMS) if container else None
                file.assign(left, file.text(left), element, _PYTHON_SELF)  # from the loop's body on
            continue
        if (annotation := node.child_by_field_name("type")) is not None:
            file.assign(node, file.text(left), _python_type(file.text(annotation)), _PYTHON_SELF)
            file.assign(node, file.text(left) + ITEMS, _python_items_type(file.text(annotation)), _PYTHON_SELF)
        elif right is not None and (function := right.child_by_field_name("function")) is not None:
            callee = _callee(file.text(function))
            arguments = right.child_by_field_name("arguments")
            if callee in _PY_CASTS and arguments is not None and (cast := _first(arguments)) is not None:
                type_name = _python_type(file.text(cast))  # `x = cast(Group, y)`: x holds a Group
            else:
                type_name = file.value_type(node, callee, _PYTHON_SELF)
            file.assign(node, file.text(left), type_name, _PYTHON_SELF)
        elif right is not None and right.type in ("identifier", "attribute"):
            value = file.text(right)
            scope = file.owner(node)
            if file.symbols[scope].kind in ("function", "method"):  # `self.app = app`, `x = y`: a local's type
                head = value.partition(".")[0]
                if "." not in value and (scope, head) in file.locals:
                    file.assign(node, file.text(left), file.local_type(scope, head, node.start_byte), _PYTHON_SELF)
                elif "." not in value and file.symbols[scope].name == "__init__":
                    _python_parameter_attribute(file, node, scope, file.text(left), value)
            elif left.type == "identifier":
                file.bind(scope, file.text(left), value, ALIAS, node.start_point.row + 1)


def _python_parameter_attribute(file: _File, node: Node, scope: int, attribute: str, value: str) -> None:
    """`self.x = p` in `__init__` from an untyped parameter: a PARAMETER binding on the class, which the
    constructor calls' arguments (ARGUMENT bindings) type at resolution."""
    head, _, name = attribute.partition(".")
    owner = file.enclosing_type(scope)
    if head not in _PYTHON_SELF or "." in name or owner is None:
        return
    function = node.parent
    while function is not None and function.type != "function_definition":
        function = function.parent
    parameters = function.child_by_field_name("parameters") if function is not None else None
    position = 0
    for parameter in parameters.named_children[1:] if parameters is not None else ():  # after self
        if parameter.type in ("list_splat_pattern", "keyword_separator", "dictionary_splat_pattern"):
            position = -1  # what follows is keyword-only
            continue
        named = parameter.child_by_field_name("name") if parameter.type == "default_parameter" else parameter
        if parameter.type in ("identifier", "default_parameter") and named is not None and file.text(named) == value:
            file.bind(owner, name, f"{position};{value}", PARAMETER, node.start_point.row + 1)
            return
        if position >= 0:
            position += 1


def _python_constructor_arguments(file: _File, call: Node, called: str, scope: int) -> None:
    """ARGUMENT bindings for the arguments of known type in a call of a class (`Foo(Bar(), b=make())`: by
    convention a CapWords name, or `cls(...)`), which type the attributes its __init__ sets from them."""
    arguments = call.child_by_field_name("arguments")
    if arguments is None or arguments.type != "argument_list":
        return
    callee = file.value_type(call, called, _PYTHON_SELF) if called in _PYTHON_SELF else called
    if callee is None:
        return
    position = 0
    for argument in arguments.named_children:
        key: str | None = None
        value: Node | None = argument
        if argument.type == "keyword_argument":
            named = argument.child_by_field_name("name")
            key, value = (file.text(named) if named is not None else None), argument.child_by_field_name("value")
        elif argument.type in ("list_splat", "dictionary_splat"):
            return  # positions after it are unknown
        elif argument.type != "comment":
            key = str(position)
            position += 1
        if key is None or value is None:
            continue
        type_name: str | None = None
        if value.type == "call" and (function := value.child_by_field_name("function")) is not None:
            if function.type in ("identifier", "attribute"):
                type_name = file.value_type(value, _callee(file.text(function)), _PYTHON_SELF)
        elif value.type == "identifier" and (scope, file.text(value)) in file.locals:
            type_name = file.local_type(scope, file.text(value), value.start_byte)
        if type_name and ";" not in type_name:
            file.bind(scope, CONSTRUCTS + callee.rpartition(".")[2], f"{callee};{key};{type_name}", ARGUMENT,
                      call.start_point.row + 1)


def _python_annotations(file: _File, annotations: list[Node], builtins: frozenset[str]) -> None:
    """An `annotates` reference per name in a type annotation (`x: Optional[Request]` names Request), once per
    name and definition: the uses `lode graph refs` lists."""
    seen: set[tuple[int, str]] = set()
    for annotation in annotations:
        scope = file.owner(annotation)
        line = annotation.start_point.row + 1
        for name in _PY_ANNOTATION_NAMES.findall(file.text(annotation)):
            if name.partition(".")[0] not in builtins and (scope, name) not in seen:
                seen.add((scope, name))
                file.refer("annotates", scope, name, line)


class _DecoratorScopes:
    """Decorators run when the definition they decorate is made, in its enclosing scope: calls inside them
    (`@click.option(type=Choice())`) belong to that scope, not to the decorated function."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int, int]] = []  # (start byte, end byte, enclosing scope), sorted

    def enclosing(self, offset: int) -> int | None:
        index = bisect.bisect_right(self.spans, (offset, _NO_END)) - 1
        if index >= 0 and self.spans[index][0] <= offset < self.spans[index][1]:
            return self.spans[index][2]
        return None


_NO_END = 1 << 62


def _python_decorators(file: _File, decorators: Sequence[Node]) -> _DecoratorScopes:
    """A `decorates` reference from each decorated node to its decorator; where the decorators' calls belong."""
    scopes = _DecoratorScopes()
    for decorator in decorators:
        decorated = decorator.parent.child_by_field_name("definition") if decorator.parent is not None else None
        name_node = decorated.child_by_field_name("name") if decorated is not None else None
        if name_node is None:
            continue
        source = file.owner(name_node)
        symbol = file.symbols[source]
        if source and symbol.start_line <= decorator.start_point.row + 1 and file.text(name_node) == symbol.name:
            enclosing = file.by_path.get(symbol.name_path.rpartition(".")[0], 0)
        else:  # a nested definition (no node): its decorators run in the definition around it, its owner
            enclosing = source
        scopes.spans.append((decorator.start_byte, decorator.end_byte, enclosing))
        expression = _first(decorator)
        if expression is not None and expression.type == "call":
            expression = expression.child_by_field_name("function")
        if expression is not None and expression.type in ("identifier", "attribute") and enclosing != source:
            file.refer("decorates", source, _callee(file.text(expression)), decorator.start_point.row + 1)
    scopes.spans.sort()
    return scopes


def _unshadowed_builtins(facts: FileFacts) -> frozenset[str]:
    """The builtins (`len(x)`, `dict.get`) whose calls are left out: those the file cannot shadow, with no star
    import and no definition or binding of the name in the file. Resolution would find nothing and drop their
    calls (resolve.py); calls with a hint are kept."""
    if any(binding.kind == STAR for binding in facts.bindings):
        return frozenset()
    return PYTHON_BUILTINS.difference(
        [binding.name for binding in facts.bindings], [symbol.name for symbol in facts.symbols]
    )


def _inherits(file: _File, node: Node, bases: Sequence[Node | str]) -> None:
    """Base expressions of the type whose header holds `node`, when that type is a node."""
    scope = file.owner(node)
    if file.symbols[scope].kind not in CONTAINER_KINDS:
        return  # a class inside a function or block: not a node
    line = node.start_point.row + 1
    for base in bases:
        file.refer("inherits", scope, base if isinstance(base, str) else _callee(file.text(base)), line)


def _python_import(file: _File, node: Node, package: str) -> None:
    scope = file.owner(node)
    line = node.start_point.row + 1
    if node.type == "import_statement":
        for item in node.children_by_field_name("name"):
            if item.type == "aliased_import":
                dotted = file.text(item.child_by_field_name("name"))  # type: ignore[arg-type]
                alias = file.text(item.child_by_field_name("alias"))  # type: ignore[arg-type]
                file.bind(scope, alias, dotted, IMPORT, line)
            else:
                dotted = file.text(item)
                head = dotted.partition(".")[0]
                file.bind(scope, head, head, IMPORT, line)
            file.refer("imports", scope, dotted, line)
        return
    source = node.child_by_field_name("module_name")
    assert source is not None
    base = _python_absolute(file, source, package)
    if any(child.type == "wildcard_import" for child in node.children):
        file.bind(scope, "*", base, STAR, line)
        file.refer("imports", scope, base, line)
        return
    for item in node.children_by_field_name("name"):
        if item.type == "aliased_import":
            name = file.text(item.child_by_field_name("name"))  # type: ignore[arg-type]
            alias = file.text(item.child_by_field_name("alias"))  # type: ignore[arg-type]
        else:
            name = alias = file.text(item)
        target = f"{base}.{name}" if base else name
        file.bind(scope, alias, target, IMPORT, line)
        file.refer("imports", scope, target, line)


def _python_absolute(file: _File, source: Node, package: str) -> str:
    """The absolute module of `from SOURCE import ...`; a relative one above the top level stays relative."""
    if source.type != "relative_import":
        return file.text(source)
    children = source.named_children
    level = len(file.text(children[0])) if children else 1
    rest = children[1] if len(children) > 1 else None
    tail = file.text(rest) if rest is not None else ""
    parts = package.split(".") if package else []
    keep = len(parts) - (level - 1)
    if keep < 1:  # beyond the top-level package: Python refuses it, so it resolves to nothing
        return "." * level + tail
    return ".".join([*parts[:keep], tail] if tail else parts[:keep])


# ---- JavaScript, TypeScript -------------------------------------------------------------------------------

_JS_QUERY = """
(call_expression function: [(identifier) (member_expression)] @call)
(new_expression constructor: [(identifier) (member_expression)] @call)
(call_expression function: (super) @super)
(import_statement) @import
(export_statement) @export
(class_heritage) @heritage
(variable_declarator name: (identifier) value: (new_expression)) @assign
(variable_declarator value: (call_expression function: (identifier) arguments: (arguments . (string) .))) @require
(assignment_expression left: (member_expression object: (this)) right: (new_expression)) @assign
(program (expression_statement
    (assignment_expression left: (member_expression) right: [(identifier) (object)]) @exports))
"""
MODULE_EXPORTS = "module.exports"  # the name of a CommonJS module's ALIAS binding to what it exports
_TS_QUERY = (
    _JS_QUERY
    + """
(required_parameter pattern: (identifier) type: (type_annotation)) @parameter
(optional_parameter pattern: (identifier) type: (type_annotation)) @parameter
(public_field_definition name: (property_identifier) type: (type_annotation)) @field
(extends_type_clause) @heritage
"""
)
JS_EXTENSIONS = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")
_TS_TYPE = re.compile(r":\s*([A-Za-z_$][\w$.]*)\s*(?:\|\s*(?:null|undefined)\s*)?\Z")


def _js_module(file: _File, specifier: str) -> tuple[str, bool]:
    """(module name, in the repository) of an import specifier; bare specifiers are packages outside it."""
    if not specifier.startswith("."):
        return specifier, False
    target = posixpath.normpath(posixpath.join(posixpath.dirname(file.facts.path), specifier))
    for extension in JS_EXTENSIONS:
        if target.endswith(extension):
            target = target[: -len(extension)]
            break
    return target.replace("/", "."), not target.startswith("..")


def _string(file: _File, node: Node | None) -> str:
    return file.text(node).strip("'\"`") if node is not None else ""


def _extract_js(query: str) -> Callable[[_File, Node], None]:
    def extract(file: _File, root: Node) -> None:
        found = _captures(file.facts.language, query, root)
        for node in (*found.get("import", ()), *found.get("export", ())):
            _js_import_export(file, node)
        for node in found.get("require", ()):
            _js_require(file, node)
        for node in found.get("exports", ()):
            _js_exports(file, node)
        for node in found.get("heritage", ()):
            bases = [
                base
                for clause in node.named_children
                for base in (clause.named_children if clause.type.endswith("_clause") else [clause])
                if base.type in ("identifier", "member_expression", "type_identifier", "nested_type_identifier")
            ]
            _inherits(file, node, bases)
        for node in found.get("assign", ()):
            left = node.child_by_field_name("name") or node.child_by_field_name("left")
            right = node.child_by_field_name("value") or node.child_by_field_name("right")
            constructor = right.child_by_field_name("constructor") if right is not None else None
            if left is not None and constructor is not None:
                file.assign(node, _callee(file.text(left)), _callee(file.text(constructor)), _THIS)
        for node in found.get("parameter", ()):
            pattern, annotation = node.child_by_field_name("pattern"), node.child_by_field_name("type")
            if pattern is not None and annotation is not None and (match := _TS_TYPE.match(file.text(annotation))):
                is_property = any(child.type == "accessibility_modifier" for child in node.children)
                file.assign(node, ("this." if is_property else "") + file.text(pattern), match.group(1), _THIS)
        for node in found.get("field", ()):
            name, annotation = node.child_by_field_name("name"), node.child_by_field_name("type")
            if name is not None and annotation is not None and (match := _TS_TYPE.match(file.text(annotation))):
                file.assign(node, file.text(name), match.group(1), _THIS)
        for node in found.get("call", ()):
            file.call(node, _callee(file.text(node)), _THIS)
        for node in found.get("super", ()):  # super(...) in a constructor
            file.call(node, "super.constructor", _THIS)

    return extract


def _js_import_export(file: _File, node: Node) -> None:
    scope = file.owner(node)
    line = node.start_point.row + 1
    module = file.facts.module
    source = node.child_by_field_name("source")
    target, inside = _js_module(file, _string(file, source)) if source is not None else (module, True)
    kind = IMPORT if inside else EXTERNAL_NAME
    if source is not None:
        file.refer("imports", scope, target, line, None if inside else EXTERNAL)
    if node.type == "import_statement":
        clause = next((child for child in node.named_children if child.type == "import_clause"), None)
        for item in clause.named_children if clause is not None else ():
            if item.type == "identifier":  # default import
                file.bind(scope, file.text(item), f"{target}.default", kind, line)
            elif item.type == "namespace_import":
                file.bind(scope, file.text(_first(item)), target, kind, line)  # type: ignore[arg-type]
            elif item.type == "named_imports":
                for specifier in item.named_children:
                    if specifier.type == "import_specifier":
                        name = file.text(specifier.child_by_field_name("name"))  # type: ignore[arg-type]
                        alias = specifier.child_by_field_name("alias")
                        file.bind(scope, file.text(alias) if alias else name, f"{target}.{name}", kind, line)
        return
    declaration = node.child_by_field_name("declaration")
    value = node.child_by_field_name("value")
    is_default = any(child.type == "default" for child in node.children)
    if is_default and declaration is not None and (named := declaration.child_by_field_name("name")) is not None:
        file.bind(0, "default", f"{module}.{file.text(named)}", IMPORT, line)
    elif is_default and value is not None and value.type == "identifier":
        file.bind(0, "default", f"{module}.{file.text(value)}", IMPORT, line)
    clause = next((child for child in node.named_children if child.type == "export_clause"), None)
    if clause is not None:
        for specifier in clause.named_children:
            if specifier.type == "export_specifier":
                name = file.text(specifier.child_by_field_name("name"))  # type: ignore[arg-type]
                alias = specifier.child_by_field_name("alias")
                if source is not None or alias is not None:  # `export {x}` binds nothing new
                    file.bind(0, file.text(alias) if alias else name, f"{target}.{name}", kind, line)
    elif source is not None:  # export * from '...' or export * as ns from '...'
        namespace = next((child for child in node.named_children if child.type == "namespace_export"), None)
        if namespace is not None and namespace.named_child_count:
            file.bind(0, file.text(_first(namespace)), target, kind, line)  # type: ignore[arg-type]
        elif inside:
            file.bind(0, "*", target, STAR, line)


def _js_exports(file: _File, node: Node) -> None:
    """CommonJS exports as ALIAS bindings of the module: `module.exports = X` (what `require` returns, and the
    default export), `module.exports = {a, b: c}`, `exports.a = b`, `module.exports.a = b`."""
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    assert left is not None and right is not None
    target, line = file.text(left), node.start_point.row + 1
    if target == MODULE_EXPORTS and right.type == "identifier":
        for name in (MODULE_EXPORTS, "default"):
            file.bind(0, name, file.text(right), ALIAS, line)
    elif target == MODULE_EXPORTS:
        for item in right.named_children:
            if item.type == "shorthand_property_identifier":
                file.bind(0, file.text(item), file.text(item), ALIAS, line)
            elif item.type == "pair" and (key := item.child_by_field_name("key")) is not None:
                value = item.child_by_field_name("value")
                if value is not None and value.type in ("identifier", "member_expression"):
                    file.bind(0, file.text(key), file.text(value), ALIAS, line)
    elif right.type == "identifier" and target.startswith(("module.exports.", "exports.")):
        name = target.removeprefix("module.").removeprefix("exports.")
        if name and "." not in name:
            file.bind(0, name, file.text(right), ALIAS, line)


def _js_require(file: _File, node: Node) -> None:
    """`const x = require('./m')` binds the module; `const {a, b: c} = require('./m')` binds its names."""
    value = node.child_by_field_name("value")
    function = value.child_by_field_name("function") if value is not None else None
    if function is None or file.text(function) != "require":
        return
    arguments = value.child_by_field_name("arguments")  # type: ignore[union-attr]
    target, inside = _js_module(file, _string(file, _first(arguments) if arguments else None))
    kind = IMPORT if inside else EXTERNAL_NAME
    scope = file.owner(node)
    line = node.start_point.row + 1
    file.refer("imports", scope, target, line, None if inside else EXTERNAL)
    name = node.child_by_field_name("name")
    if name is None:
        return
    if name.type == "identifier":
        file.bind(scope, file.text(name), target, kind, line)
    elif name.type == "object_pattern":
        for item in name.named_children:
            if item.type == "shorthand_property_identifier_pattern":
                file.bind(scope, file.text(item), f"{target}.{file.text(item)}", kind, line)
            elif item.type == "pair_pattern" and (key := item.child_by_field_name("key")) is not None:
                alias = item.child_by_field_name("value")
                if alias is not None and alias.type == "identifier":
                    file.bind(scope, file.text(alias), f"{target}.{file.text(key)}", kind, line)


TS_CONFIGS = ("tsconfig.json", "jsconfig.json")
TS_PATHS = "@paths:"  # prefix of a TS config's bindings: `@paths:` + a `paths` pattern; target: its paths, joined
# by newlines, relative to the repository (baseUrl or the config's folder applied); `baseUrl` alone is pattern `*`
_JSONC_NOISE = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*[\s\S]*?\*/|,(?=\s*[}\]])')


def _ts_paths(facts: FileFacts, text: str) -> None:
    """`compilerOptions.paths` and `baseUrl` of a tsconfig.json / jsconfig.json (JSON with comments and
    trailing commas), as bindings of its module node that resolution maps bare import specifiers through."""
    try:
        for _ in range(2):  # the second pass drops the commas the comments hid: `a, /* c */ }`
            text = _JSONC_NOISE.sub(lambda match: match.group(1) or "", text)
        config = json.loads(text)
    except ValueError:
        return  # not valid JSON(C): no aliases, as TypeScript itself would fail
    options = config.get("compilerOptions") if isinstance(config, dict) else None
    if not isinstance(options, dict):
        return
    folder = posixpath.dirname(facts.path)
    base_url = options.get("baseUrl")
    base = posixpath.normpath(posixpath.join(folder, base_url)) if isinstance(base_url, str) else folder
    paths = options.get("paths")
    patterns = dict(paths) if isinstance(paths, dict) else {}
    if isinstance(base_url, str):
        patterns.setdefault("*", ["*"])
    for pattern, targets in patterns.items():
        if isinstance(pattern, str) and isinstance(targets, list):
            joined = "\n".join(posixpath.normpath(posixpath.join(base, target)).removeprefix("./")
                                for target in targets if isinstance(target, str))
            if joined:
                facts.bindings.append(Binding(0, TS_PATHS + pattern, joined, IMPORT, 1))


# ---- Go ---------------------------------------------------------------------------------------------------

_GO_QUERY = """
(call_expression function: [(identifier) (selector_expression)] @call)
(import_spec) @import
(package_clause (package_identifier) @package)
(method_declaration receiver: (parameter_list (parameter_declaration name: (identifier) @receiver)))
(field_declaration_list (field_declaration !name type: _ @embed))
(short_var_declaration) @assign
(var_spec name: (identifier) type: _) @assign
(function_declaration result: _ @result)
(method_declaration result: _ @result)
"""
_GO_VERSION = re.compile(r"v\d+\Z")


def go_package_name(import_path: str) -> str:
    parts = [part for part in import_path.split("/") if part and not _GO_VERSION.match(part)]
    return parts[-1].removeprefix("go-").split(".")[0] if parts else import_path


def _go_type(file: _File, node: Node | None) -> str | None:
    """`T`, `pkg.T`, `&T{}`, `T{}`, `*T` as a type expression."""
    while node is not None and node.type in ("unary_expression", "pointer_type", "composite_literal"):
        node = node.child_by_field_name("operand" if node.type == "unary_expression" else "type") or (_first(node))
    if node is None or node.type not in ("type_identifier", "qualified_type", "identifier"):
        return None
    return file.text(node)


def _extract_go(file: _File, root: Node) -> None:
    found = _captures("go", _GO_QUERY, root)
    for node in found.get("package", ()):
        file.facts.namespace = file.text(node)
    for node in found.get("import", ()):
        path = _string(file, node.child_by_field_name("path"))
        alias = node.child_by_field_name("name")
        line = node.start_point.row + 1
        name = file.text(alias) if alias is not None else go_package_name(path)
        if name not in ("_", "."):
            file.bind(0, name, path, GO_PACKAGE, line)
        file.refer("imports", 0, path, line, PACKAGE)
    for node in found.get("embed", ()):
        if (base := _go_type(file, node)) is not None:
            _inherits(file, node, [base])
    for node in found.get("result", ()):  # what a function returns: its (first) result type
        scope = file.owner(node)
        result: Node | None = node
        if node.type == "parameter_list":  # `(T, error)`
            first = _first(node)
            result = first.child_by_field_name("type") if first is not None else None
        if scope and (type_name := _go_type(file, result)) is not None:
            file.bind(scope, RETURNS, type_name, INSTANCE, node.start_point.row + 1)
    for node in found.get("assign", ()):
        if node.type == "short_var_declaration":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is not None and right is not None and right.named_child_count == 1 and left.named_child_count:
                target, value = _first(left), _first(right)
                if value is not None and value.type == "call_expression":  # `x, err := pkg.New()`: what New returns
                    function = value.child_by_field_name("function")
                    type_name = _callee(file.text(function)) if function is not None else None
                elif left.named_child_count == 1:
                    type_name = _go_type(file, value)
                else:
                    continue
                if target is not None and target.type == "identifier":
                    file.assign(node, file.text(target), type_name, _NO_NAMES)
        elif (variable := node.child_by_field_name("name")) is not None:  # var x T
            file.assign(node, file.text(variable), _go_type(file, node.child_by_field_name("type")), _NO_NAMES)
    receivers = {file.owner(node): frozenset({file.text(node)}) for node in found.get("receiver", ())}
    for node in found.get("call", ()):
        file.call(node, _callee(file.text(node)), receivers.get(file.owner(node), _NO_NAMES))


# ---- Java -------------------------------------------------------------------------------------------------

_JAVA_QUERY = """
(method_invocation) @call
(object_creation_expression type: _ @new)
(import_declaration) @import
(package_declaration) @package
(superclass _ @base)
(super_interfaces (type_list _ @base))
(extends_interfaces (type_list _ @base))
(local_variable_declaration) @variable
(field_declaration) @variable
(formal_parameter) @parameter
"""


def _java_type(file: _File, node: Node | None) -> str | None:
    if node is None:
        return None
    if node.type == "generic_type":
        node = _first(node)
    if node is None or node.type not in ("type_identifier", "scoped_type_identifier"):
        return None
    return file.text(node)


def _extract_java(file: _File, root: Node) -> None:
    found = _captures("java", _JAVA_QUERY, root)
    for node in found.get("package", ()):
        file.facts.namespace = file.text(_first(node))  # type: ignore[arg-type]
    for node in found.get("import", ()):
        if (dotted := _first(node)) is None:
            continue
        imported = file.text(dotted)
        line = node.start_point.row + 1
        if any(child.type == "asterisk" for child in node.children):
            file.bind(0, "*", imported, STAR, line)
        else:
            file.bind(0, imported.rpartition(".")[2], imported, IMPORT, line)
        file.refer("imports", 0, imported, line)
    for node in found.get("base", ()):
        if (type_name := _java_type(file, node)) is not None:
            _inherits(file, node, [type_name])
    for node in found.get("variable", ()):
        type_name = _java_type(file, node.child_by_field_name("type"))
        for declarator in node.children_by_field_name("declarator"):
            if (name := declarator.child_by_field_name("name")) is not None:
                file.assign(node, file.text(name), type_name, _THIS)
    for node in found.get("parameter", ()):
        if (name := node.child_by_field_name("name")) is not None:
            file.assign(node, file.text(name), _java_type(file, node.child_by_field_name("type")), _THIS)
    for node in found.get("call", ()):
        method, target = node.child_by_field_name("name"), node.child_by_field_name("object")
        if method is not None:
            callee = file.text(method) if target is None else f"{file.text(target)}.{file.text(method)}"
            arguments = node.child_by_field_name("arguments")
            count = sum(child.type != "line_comment" and child.type != "block_comment"
                        for child in arguments.named_children) if arguments is not None else None
            file.call(node, _callee(callee), _THIS, arguments=count)
    for node in found.get("new", ()):
        if (type_name := _java_type(file, node)) is not None:
            file.call(node, type_name, _THIS)


# ---- other languages: calls by name -----------------------------------------------------------------------

_GENERIC_ARGUMENTS = re.compile(r"<[^<>]*>")
_NAME_PARTS = re.compile(r"[A-Za-z_]\w*")


def _extract_by_name(file: _File, root: Node) -> None:
    """Calls as `Qualifier.name` (the last two names of the callee) for languages resolved by name."""
    record = LANGUAGES.get(file.facts.language)
    query = record.call_query if record else None
    if query is None:
        return
    for node in _captures(file.facts.language, query, root).get("call", ()):
        text = file.text(node)
        while "<" in text and (stripped := _GENERIC_ARGUMENTS.sub("", text)) != text:
            text = stripped
        parts = _NAME_PARTS.findall(text)
        if parts:
            file.refer("calls", file.owner(node), ".".join(parts[-2:]), node.start_point.row + 1)


# by Language.facts_reader; a language without one has its calls read by name (its call_query)
_READERS: dict[str | None, Callable[[_File, Node], None]] = {
    "python": _extract_python,
    "javascript": _extract_js(_JS_QUERY),
    "typescript": _extract_js(_TS_QUERY),
    "go": _extract_go,
    "java": _extract_java,
}

"""Split one source file into chunks: its definitions, the module-level code between them, or line windows.

Only the top level, namespaces and type bodies are walked; function bodies are never descended into,
so the work is proportional to the number of definitions, not to the size of the tree.
"""

from __future__ import annotations

import inspect
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import pairwise

from tree_sitter import Node, Tree

from lode.chunking.treesitter import ParseTimeout, parse
from lode.errorlog import record_error
from lode.chunking.windows import SourceLines, window_chunks, window_ranges
from lode.config import Settings
from lode.languages import grammar_for
from lode.languages.base import CONTAINER_KINDS, Grammar, Scope
from lode.model import Chunk, ChunkedFile


_Elision = tuple[int, int, bytes]  # a member's body [start, end) and what replaces it in its parent's chunk

_SURROGATES = re.compile("[\ud800-\udfff]")
_NON_SPACE = re.compile(rb"\S")
_WORD = re.compile(rb"[\w\x80-\xff]")
_UNCOVERED_LINES = re.compile(rb"\x00+")
_NAME_SEPARATORS = re.compile(r"::|\\")
_DOTTED_NAME_NODES = frozenset({"scoped_identifier", "qualified_name"})  # Java, C#: `a.b.c` as one node
_BLOCK_COMMENT_LINE = re.compile(r"^\s*\*(?!/) ?")  # the " * " starting each line of a /** ... */ block
_LINE_COMMENT_MARKER = re.compile(r"^\s*(?://+!?|#+)")
_COMMENT_START = re.compile(rb"[#/]")  # how comments start (but for rare Ruby `=begin` blocks)
_SIGNATURE_TAIL = " \t\r\n:;{"  # `def f():`, `def f;` (Ruby), `type T struct {` (no body node)


def chunk_file(path: str, text: str, language: str | None, module: str, settings: Settings) -> ChunkedFile:
    """Chunk `text`, the content of `path`. Never raises; falls back to line windows when it cannot parse."""
    return chunk_file_with_tree(path, text, language, module, settings)[0]


def chunk_file_with_tree(
    path: str, text: str, language: str | None, module: str, settings: Settings
) -> tuple[ChunkedFile, Tree | None]:
    """chunk_file, plus the parse tree its definitions came from (None when it fell back to line windows)."""
    language_id = language or "text"
    try:
        data = text.encode()
    except UnicodeEncodeError:  # lone surrogates; U+FFFD has the same UTF-8 length
        data = _SURROGATES.sub("\ufffd", text).encode()
    lines = SourceLines(data)
    if language is None or (grammar := grammar_for(language)) is None:
        return ChunkedFile(language_id, _file_windows(lines, settings), "unsupported_language"), None
    if lines.is_blank(0, len(lines.data)):
        return ChunkedFile(language_id, []), None
    try:
        tree = parse(language, lines.data, settings.timeouts.parse)
        if tree.root_node.has_error:
            return ChunkedFile(language_id, _file_windows(lines, settings), "parse_error"), None
        return ChunkedFile(language_id, _Chunker(grammar, lines, module, settings).chunk(tree.root_node)), tree
    except ParseTimeout as exc:
        record_error("chunking", exc, severity="warning", category="timeout",
                     context={"path": path, "language": language_id, "bytes": len(lines.data),
                              "fallback": "line windows", "setting": "LODE_TIMEOUT_PARSE"})
        return ChunkedFile(language_id, _file_windows(lines, settings), "parse_timeout"), None
    except Exception as exc:  # a tree shape the chunker does not expect must not lose the file
        record_error("chunking", exc, severity="error", category="parse",
                     context={"path": path, "language": language_id, "fallback": "line windows"})
        return ChunkedFile(language_id, _file_windows(lines, settings), "parse_error"), None


def _file_windows(lines: SourceLines, settings: Settings) -> list[Chunk]:
    return window_chunks(
        lines,
        0,
        len(lines.data),
        window_lines=settings.window_lines,
        overlap=settings.window_overlap,
        max_bytes=settings.chunk_max_bytes,
    )


@dataclass(slots=True)
class _Unit:
    """A definition that becomes one chunk, or several when it is too large."""

    kind: str
    name: str
    name_path: str
    start: int  # bytes, including leading comments and decorators
    end: int
    signature: str
    docstring: str | None
    body: Node | None
    top_level: bool  # not inside another definition
    guard: str | None = None  # see Chunk.guard
    elisions: list[_Elision] = field(default_factory=list)  # member bodies left out, sorted before use


@dataclass(frozen=True, slots=True)
class _Context:
    """Where a definition sits."""

    path: tuple[str, ...]  # name-path prefix: module or package, enclosing namespaces and types
    parent: _Unit | None = None  # the definition whose chunk elides this one's body
    in_type: bool = False  # functions here are methods
    guard: str | None = None  # the guard of the enclosing definition, which its members share


@dataclass(frozen=True, slots=True)
class _Found:
    """A definition or scope, possibly inside wrappers (decorators, `export`, `template <...>`)."""

    outer: Node  # its chunk spans this node
    node: Node
    signature_start: int
    name_node: Node | None  # from a wrapper, for an anonymous definition


def _last_row(node: Node) -> int:
    """The last line a node occupies; some comment nodes end just after their newline."""
    row, column = node.end_point
    return row if column or row == node.start_point.row else row - 1


def _within(elisions: list[_Elision], start: int, end: int) -> list[_Elision]:
    """The elisions (sorted) lying inside [start, end)."""
    first = bisect_left(elisions, (start,))
    last = bisect_left(elisions, (end,), lo=first)
    return [elision for elision in elisions[first:last] if elision[1] <= end]


_GUARD_TEXT = 80  # characters of a guard's condition kept
_GUARD_CATEGORIES = (  # the first whose pattern the condition matches names the guard
    ("type checking", re.compile(r"\bTYPE_CHECKING\b")),
    ("platform", re.compile(r"\b(?:sys\.platform|os\.name|platform\.\w+|sys\.implementation|IS_WINDOWS|WINDOWS)\b")),
    ("version", re.compile(r"\b(?:version_info|sys\.version|PY\d*|PYPY)\b")),
)
_IMPORT_ERRORS = re.compile(r"\b(?:ImportError|ModuleNotFoundError)\b")


def _python_guard_kind(condition: str) -> str:
    return next((name for name, pattern in _GUARD_CATEGORIES if pattern.search(condition)), "condition")


def _python_guarded_blocks(statement: Node, text: Callable[[Node], str]) -> list[tuple[Node, str]]:
    """The blocks of a module- or class-level if/try/with statement, each with its guard: what decides whether
    the definitions in it exist (`platform: sys.platform == "win32"`, `fallback import: except ImportError`)."""
    def clip(node: Node | None) -> str:
        return " ".join(text(node).split())[:_GUARD_TEXT] if node is not None else ""

    blocks: list[tuple[Node | None, str]] = []
    if statement.type == "if_statement":
        condition = clip(statement.child_by_field_name("condition"))
        kind = _python_guard_kind(condition)
        blocks.append((statement.child_by_field_name("consequence"), f"{kind}: {condition}"))
        for alternative in statement.children_by_field_name("alternative"):
            if alternative.type == "elif_clause":
                other = clip(alternative.child_by_field_name("condition"))
                blocks.append((alternative.child_by_field_name("consequence"), f"{_python_guard_kind(other)}: {other}"))
            else:
                blocks.append((alternative.child_by_field_name("body"), f"{kind}: else of {condition}"))
    elif statement.type == "try_statement":
        blocks.append((statement.child_by_field_name("body"), "try"))
        for clause in statement.named_children:
            body = clause.child_by_field_name("body") or next(
                (child for child in clause.named_children if child.type == "block"), None)
            if clause.type == "except_clause":
                caught = clip(clause.child_by_field_name("value")) or "everything"
                kind = "fallback import" if _IMPORT_ERRORS.search(caught) else "except"
                blocks.append((body, f"{kind}: except {caught}"))
            elif clause.type in ("else_clause", "finally_clause"):
                blocks.append((body, "try " + clause.type.partition("_")[0]))
    elif statement.type == "with_statement":
        with_clause = next((child for child in statement.named_children if child.type == "with_clause"), None)
        blocks.append((statement.child_by_field_name("body"), f"with: {clip(with_clause)}"))
    return [(block, guard) for block, guard in blocks if block is not None]


_GUARD_STATEMENTS = frozenset({"if_statement", "try_statement", "with_statement"})


def _python_unguarded(members: list[Node], guards: dict[int, str], text: Callable[[Node], str],
                      outer: str | None = None) -> list[Node]:
    """members with each if/try/with statement replaced by the statements of its blocks, recursively; `guards`
    receives the guard of each statement taken out of one (nested guards joined by "; ")."""
    flat: list[Node] = []
    for member in members:
        if member.type not in _GUARD_STATEMENTS:
            flat.append(member)
            if outer is not None:
                guards[member.id] = outer
            continue
        for block, guard in _python_guarded_blocks(member, text):
            inner = guard if outer is None else f"{outer}; {guard}"
            flat += _python_unguarded(block.named_children, guards, text, inner)
    return flat


def _line_count(content: bytes) -> int:
    return content.count(b"\n") + (not content.endswith(b"\n"))


def _comment_lines(comment: str) -> list[str]:
    """The text of a comment without its markers (`//`, `#`, `/* */`, leading `*`)."""
    if comment.startswith("/*"):
        inner = comment[2 : -2 if comment.endswith("*/") and len(comment) >= 4 else None].lstrip("*!")
        return [_BLOCK_COMMENT_LINE.sub("", line) for line in inner.split("\n")]
    return [_LINE_COMMENT_MARKER.sub("", line) for line in comment.split("\n")]


class _Chunker:
    def __init__(self, grammar: Grammar, lines: SourceLines, module: str, settings: Settings) -> None:
        self.grammar = grammar
        self.lines = lines
        self.data = lines.data
        self.module = module
        self.settings = settings
        self.leading_types = grammar.comments | grammar.attachments
        self.relevant_types = {*grammar.definitions, *grammar.wrappers, *grammar.scopes, *grammar.file_namespaces}
        self.closers: list[int] = []  # byte offsets of lone closing tokens of scopes

    def chunk(self, root: Node) -> list[Chunk]:
        units = self._collect(root)
        chunks = [chunk for unit in units for chunk in self._unit_chunks(unit)]
        chunks.extend(self._module_chunks(units))
        chunks.sort(key=lambda c: (c.start_byte, -c.end_byte, c.kind, c.name_path or ""))
        return chunks

    # -- finding definitions

    def _collect(self, root: Node) -> list[_Unit]:
        """Every definition at the top level, in namespaces and in type bodies, without recursion."""
        grammar = self.grammar
        units: list[_Unit] = []
        work: list[tuple[Node, _Context, bool]] = [(root, _Context((self.module,) if self.module else ()), True)]
        while work:
            container, context, at_root = work.pop()
            members = self._members(container)
            if not at_root:
                members[:0] = self._comments_before(container)
            guards: dict[int, str] = {}
            if grammar.python_guards:
                members = _python_unguarded(members, guards, self._text)
            for index, member in enumerate(members):
                if member.type not in self.relevant_types:
                    continue
                for found in self._unwrap(member):
                    node = found.node
                    scope = grammar.scopes.get(node.type)
                    body = node.child_by_field_name(scope.body_field) if scope else None
                    if scope is not None and body is not None:
                        work.append((body, self._scope_context(scope, node, context, at_root), False))
                        self._note_closer(node)
                    elif node.type in grammar.file_namespaces:
                        if at_root:  # names everything after it in the file
                            context = replace(context, path=self._file_namespace(node))
                    elif node.type in grammar.definitions:
                        leading = self._leading(members, index) if found.outer is member else None
                        unit = self._unit(found, context, leading)
                        if unit is None:
                            continue
                        unit.guard = guards.get(member.id, context.guard)
                        units.append(unit)
                        if unit.kind in CONTAINER_KINDS and unit.body is not None:
                            type_context = _Context((unit.name_path,), unit, True, unit.guard)
                            work.append((unit.body, type_context, False))
        return units

    def _members(self, node: Node) -> list[Node]:
        """Named children in source order, with member lists (`#ifdef` blocks, ...) flattened."""
        member_lists = self.grammar.member_lists
        members: list[Node] = []
        stack = [iter(node.named_children)]
        while stack:
            for child in stack[-1]:
                if child.type in member_lists:
                    stack.append(iter(child.named_children))
                    break
                members.append(child)
            else:
                stack.pop()
        return members

    def _note_closer(self, scope: Node) -> None:
        """Remember the line of a scope's closing `}` or `end` when it stands alone, so it is no module code."""
        last: Node | None = scope
        while last is not None and last.child_count:
            last = last.child(last.child_count - 1)
        if last is None:
            return
        if not last.is_named and self._starts_line(last.start_byte):
            self.closers.append(last.start_byte)

    def _comments_before(self, body: Node) -> list[Node]:
        """Comments between a header and its body (`class A:` then `# ...`), which belong to the first member."""
        comments: list[Node] = []
        sibling = body.prev_named_sibling
        while sibling is not None and sibling.type in self.leading_types:
            comments.append(sibling)
            sibling = sibling.prev_named_sibling
        comments.reverse()
        return comments

    def _starts_line(self, offset: int) -> bool:
        return self.lines.is_blank(self.lines.line_start(offset), offset)

    def _unwrap(self, member: Node) -> list[_Found]:
        """The definitions and scopes inside wrapper nodes; a sole wrapped node keeps the wrapper's range."""
        wrappers = self.grammar.wrappers
        found: list[_Found] = []
        pending: list[tuple[Node, Node, int | None, Node | None]] = [(member, member, None, None)]
        while pending:
            node, outer, signature_start, name_node = pending.pop()
            wrapper = wrappers.get(node.type)
            if wrapper is None:
                start = node.start_byte if signature_start is None else signature_start
                found.append(_Found(outer, node, start, name_node))
                continue
            if wrapper.field is None:
                inner = [
                    child
                    for i, child in enumerate(node.children)
                    if child.is_named and node.field_name_for_child(i) is None
                ]
            else:
                child = node.child_by_field_name(wrapper.field)
                inner = [] if child is None else [child]
            inner = [child for child in inner if child.type not in self.grammar.comments]
            single = len(inner) == 1
            if single and wrapper.in_signature and signature_start is None:
                signature_start = node.start_byte
            if wrapper.name_field and name_node is None:
                name_node = node.child_by_field_name(wrapper.name_field)
            for child in reversed(inner):
                pending.append((child, outer if single else child, signature_start if single else None, name_node))
        return found

    def _leading(self, members: list[Node], index: int) -> tuple[int, list[Node]] | None:
        """Comments and decorators directly above members[index]: where they start, and the comments."""
        first_row = members[index].start_point.row
        start: int | None = None
        comments: list[Node] = []
        for i in range(index - 1, -1, -1):
            sibling = members[i]
            if sibling.type not in self.leading_types or _last_row(sibling) < first_row - 1:
                break
            if not self._starts_line(sibling.start_byte):
                break  # a trailing comment of the code before it
            start, first_row = sibling.start_byte, sibling.start_point.row
            if sibling.type in self.grammar.comments:
                comments.append(sibling)
        if start is None:
            return None
        comments.reverse()
        return start, comments

    def _unit(self, found: _Found, context: _Context, leading: tuple[int, list[Node]] | None) -> _Unit | None:
        node = found.node
        definition = self.grammar.definitions[node.type]
        kind = definition.kind
        holder = node  # the node holding the body
        if definition.value_field:
            value = node.child_by_field_name(definition.value_field)
            value_kind = definition.value_kinds.get(value.type) if value is not None else None
            if value is None or value_kind is None:
                return None
            kind, holder = value_kind, value
        body = holder.child_by_field_name(definition.body_field) if definition.body_field else None
        if body is None and definition.requires_body:
            return None
        name_node = node.child_by_field_name(definition.name_field) or found.name_node
        parts = self._name_parts(name_node) if name_node is not None else ()
        if not parts:
            return None
        *qualifier, name = parts
        if definition.receiver_field:
            receiver = node.child_by_field_name(definition.receiver_field)
            receiver_type = self._type_name(receiver) if receiver is not None else None
            qualifier = [receiver_type] if receiver_type else []
        if kind == "function" and (context.in_type or qualifier):
            kind = "method"

        start = found.outer.start_byte if leading is None else leading[0]
        if self._starts_line(start):
            start = self.lines.line_start(start)
        end = found.outer.end_byte
        if end <= start:
            return None
        if self.grammar.python_docstrings:
            docstring = self._python_docstring(body)
        else:
            docstring = self._comment_docstring(leading[1]) if leading else None
        unit = _Unit(
            kind=kind,
            name=name,
            name_path=".".join((*context.path, *qualifier, name)),
            start=start,
            end=end,
            signature=self._signature(found.signature_start, node, body),
            docstring=docstring,
            body=body,
            top_level=context.parent is None,
        )
        if context.parent is not None and body is not None and body.end_byte > body.start_byte:
            elision = b"{ ... }" if self.data[body.start_byte : body.start_byte + 1] == b"{" else b"..."
            context.parent.elisions.append((body.start_byte, body.end_byte, elision))
        return unit

    def _scope_context(self, scope: Scope, node: Node, context: _Context, at_root: bool) -> _Context:
        name_node = node.child_by_field_name(scope.name_field) if scope.name_field else None
        parts: tuple[str, ...] = ()
        if name_node is not None and scope.names_type:
            type_name = self._type_name(name_node)
            parts = (type_name,) if type_name else ()
        elif name_node is not None:
            parts = self._name_parts(name_node)
        path = parts if scope.replaces_module and at_root and parts else (*context.path, *parts)
        return _Context(path, None, scope.names_type)

    def _file_namespace(self, node: Node) -> tuple[str, ...]:
        field_name = self.grammar.file_namespaces[node.type]
        if field_name:
            name_node = node.child_by_field_name(field_name)
        else:
            name_node = node.named_child(0) if node.named_child_count else None
        return self._name_parts(name_node) if name_node is not None else ()

    # -- names, signatures, docstrings

    def _text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def _name_parts(self, node: Node) -> tuple[str, ...]:
        """`Foo::bar` -> ("Foo", "bar"); C declarators are followed down to the declared name."""
        while (declarator := node.child_by_field_name("declarator")) is not None:
            node = declarator
        parts: list[str] = []
        while node.type == "qualified_identifier" and (name := node.child_by_field_name("name")) is not None:
            scope = node.child_by_field_name("scope")
            scope_name = self._type_name(scope) if scope is not None else None
            if scope_name:
                parts.append(scope_name)
            node = name
        text = self._text(node)
        pieces = _NAME_SEPARATORS.split(text)
        if node.type in _DOTTED_NAME_NODES:
            pieces = [piece for dotted in pieces for piece in dotted.split(".")]
        parts.extend(piece.strip().strip("\"'") for piece in pieces)
        return tuple(part for part in parts if part)

    def _type_name(self, node: Node) -> str | None:
        """The bare type name in a type expression: `*Server`, `Foo<T>`, `crate::Bar`, `(s *Server)`."""
        current: Node | None = node
        while current is not None and not current.type.endswith("identifier") and current.named_child_count:
            current = (
                current.child_by_field_name("type") or current.child_by_field_name("name") or current.named_child(0)
            )
        if current is None:
            return None
        pieces = [piece.strip() for piece in _NAME_SEPARATORS.split(self._text(current))]
        return pieces[-1] or None

    def _signature(self, start: int, node: Node, body: Node | None) -> str:
        """The header up to the body or a comment, whitespace-normalised; the first line when there is no body."""
        if body is not None and body.start_byte >= start:
            end = body.start_byte
        else:
            end = self.data.find(b"\n", start, node.end_byte)
            end = node.end_byte if end < 0 else end
        if _COMMENT_START.search(self.data, start, end):  # cheap test before looking at the children
            for child in node.children:
                if child.type in self.grammar.comments and start <= child.start_byte < end:
                    end = child.start_byte
                    break
        header = self.data[start:end].decode("utf-8", "replace")
        return " ".join(header.split()).rstrip(_SIGNATURE_TAIL)

    def _python_docstring(self, body: Node | None) -> str | None:
        statement = body.named_child(0) if body is not None and body.named_child_count else None
        while statement is not None and statement.type == "comment":
            statement = statement.next_named_sibling
        if statement is None or statement.type != "expression_statement" or statement.named_child_count != 1:
            return None
        string = statement.named_child(0)
        if string is None or string.type != "string" or string.child_count < 2:
            return None
        opening, closing = string.child(0), string.child(string.child_count - 1)
        if opening is None or closing is None:
            return None
        raw = self.data[opening.end_byte : closing.start_byte].decode("utf-8", "replace")
        return inspect.cleandoc(raw) or None

    def _comment_docstring(self, comments: list[Node]) -> str | None:
        lines = [line.rstrip() for comment in comments for line in _comment_lines(self._text(comment).rstrip())]
        return inspect.cleandoc("\n".join(lines)) or None

    # -- making chunks

    def _unit_chunks(self, unit: _Unit) -> list[Chunk]:
        unit.elisions.sort()
        content = self._elide(unit.start, unit.end, unit.elisions)
        fits = self._fits(_line_count(content), len(content))
        ranges = [(unit.start, unit.end)] if fits else self._split(unit)
        return [
            self.lines.chunk(
                unit.kind,
                start,
                end,
                content if len(ranges) == 1 else self._elide(start, end, unit.elisions),
                name=unit.name,
                name_path=unit.name_path,
                signature=unit.signature,
                docstring=unit.docstring,
                guard=unit.guard,
            )
            for start, end in ranges
        ]

    def _fits(self, line_count: int, byte_count: int) -> bool:
        return line_count <= self.settings.chunk_max_lines and byte_count <= self.settings.chunk_max_bytes

    def _elide(self, start: int, end: int, elisions: list[_Elision]) -> bytes:
        """data[start:end] with the member bodies inside it replaced by their elisions."""
        if not elisions:
            return self.data[start:end]
        pieces: list[bytes] = []
        position = start
        for elision_start, elision_end, replacement in _within(elisions, start, end):
            pieces += (self.data[position:elision_start], replacement)
            position = elision_end
        pieces.append(self.data[position:end])
        return b"".join(pieces)

    def _split(self, unit: _Unit) -> list[tuple[int, int]]:
        """Consecutive, non-overlapping parts covering an oversized unit, cut between its body's children."""
        parts: list[tuple[int, int]] = []
        part_start, part_lines, part_bytes = unit.start, 0, 0
        for segment_start, segment_end in pairwise([unit.start, *self._cut_points(unit), unit.end]):
            segment = self._elide(segment_start, segment_end, unit.elisions)
            segment_lines, segment_bytes = _line_count(segment), len(segment)
            if self._fits(part_lines + segment_lines, part_bytes + segment_bytes):
                part_lines, part_bytes = part_lines + segment_lines, part_bytes + segment_bytes
                continue
            if part_start < segment_start:
                parts.append((part_start, segment_start))
            if self._fits(segment_lines, segment_bytes):
                part_start, part_lines, part_bytes = segment_start, segment_lines, segment_bytes
            else:
                parts.extend(self._segment_windows(segment_start, segment_end, unit.elisions))
                part_start, part_lines, part_bytes = segment_end, 0, 0
        if part_start < unit.end:
            parts.append((part_start, unit.end))
        return parts

    def _cut_points(self, unit: _Unit) -> list[int]:
        """Line starts where one child of the body ends and the next begins on a later line."""
        if unit.body is None:
            return []
        cuts: list[int] = []
        last_cut = unit.start
        previous: Node | None = None
        previous_end = 0
        for child in self._members(unit.body):
            if previous is not None and previous.type not in self.leading_types:  # keep comments with what follows
                cut = self.lines.line_start(child.start_byte)
                if last_cut < cut < unit.end and cut >= previous_end:
                    cuts.append(cut)
                    last_cut = cut
            previous, previous_end = child, max(previous_end, child.end_byte)
        return cuts

    def _segment_windows(self, start: int, end: int, elisions: list[_Elision]) -> list[tuple[int, int]]:
        """Non-overlapping line windows over one oversized child, never cutting inside an elided body."""
        inside = _within(elisions, start, end)
        windows: list[tuple[int, int]] = []
        for window in window_ranges(
            self.lines,
            start,
            end,
            window_lines=self.settings.window_lines,
            overlap=0,
            max_bytes=self.settings.chunk_max_bytes,
        ):
            if windows and any(s < window[0] < e for s, e, _ in inside):
                windows[-1] = (windows[-1][0], window[1])
            else:
                windows.append(window)
        return windows

    def _module_chunks(self, units: list[_Unit]) -> list[Chunk]:
        """Runs of lines outside every top-level definition, trimmed; runs without any word are dropped."""
        lines, data = self.lines, self.data
        covered = bytearray(len(lines.starts))
        for unit in units:
            if unit.top_level:
                first, last = lines.line_of(unit.start), lines.line_of(max(unit.start, unit.end - 1))
                covered[first : last + 1] = b"\x01" * (last - first + 1)
        for closer in self.closers:
            covered[lines.line_of(closer)] = 1
        name_path = self.module or None
        chunks: list[Chunk] = []
        for run in _UNCOVERED_LINES.finditer(covered):
            run_end = lines.starts[run.end()] if run.end() < len(lines.starts) else len(data)
            first_text = _NON_SPACE.search(data, lines.starts[run.start()], run_end)
            if first_text is None or _WORD.search(data, first_text.start(), run_end) is None:
                continue
            start = lines.line_start(first_text.start())
            end = start + len(data[start:run_end].rstrip())
            content = data[start:end]
            if self._fits(_line_count(content), len(content)):
                chunks.append(lines.chunk("module", start, end, content, name_path=name_path))
            else:
                chunks.extend(
                    window_chunks(
                        lines,
                        start,
                        end,
                        window_lines=self.settings.window_lines,
                        overlap=self.settings.window_overlap,
                        max_bytes=self.settings.chunk_max_bytes,
                        kind="module",
                        name_path=name_path,
                    )
                )
        return chunks

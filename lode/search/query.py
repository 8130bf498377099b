"""Query understanding: what kind of query this is and what in it carries signal.

Kinds:
- symbol: one identifier, possibly qualified (`url_for`, `Flask.url_for`, `Rack::Builder`, `getUser()`);
- natural: prose with no code-like word;
- mixed: prose with identifiers in it (`why does url_for ignore _external`);
- long: issue bodies, tracebacks, logs (over LONG_CHARS characters or LONG_LINES lines).

From the text it extracts identifiers (code-like words, backquoted spans, dotted names), file paths and traceback
frames. It looks at the text only; the engine adds what needs the index (rare words by idf, the symbol table).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from lode.search.paths import ROLE_WORDS
from lode.search.tokens import STOP_WORDS, tokenize

LONG_CHARS = 300
LONG_LINES = 3
MAX_IDENTIFIERS = 64  # the definition lookup takes at most this many names
MAX_FRAMES = 64
TITLE_CHARS = 200  # a long query's first line up to this length is its title (an issue's)
FOCUS_CHARS = 1000  # the embedding legs read about 256 word pieces: give them the part that says what is wrong


class QueryKind(StrEnum):
    SYMBOL = "symbol"
    NATURAL = "natural"
    MIXED = "mixed"
    LONG = "long"


_SEPARATORS = re.compile(r"::|->|#")
_SYMBOL = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|#|->)[A-Za-z_$][\w$]*)*(?:\(\))?$")
# Code-like: camelCase, snake_case, dotted names, ::, a call, a leading underscore, ALLCAPS words with digits
_CODE_WORD = re.compile(
    r"[a-z0-9][A-Z]|[A-Za-z0-9]_[A-Za-z0-9]|[A-Za-z_][\w]*\.[A-Za-z_]|::|\w\(|^_\w|^[A-Z][a-z]+[A-Z]")
_WORD = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|#|->)[A-Za-z_$][\w$]*)*(?:\(\))?")
_CODE_SPAN = re.compile(r"```[^\n]*\n(.*?)(?:```|$)|`([^`\n]+)`", re.DOTALL)
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:py|pyi|js|jsx|ts|tsx|go|rs|java|kt|rb|c|cc|cpp|h|hpp|cs"
                   r"|php|swift|scala|m|mm|lua|sh|ex|exs|erl|hs|ml|clj|dart|vue|svelte))\b")
# Traceback frames: Python `File "x.py", line 3, in f`; Java `at a.b.C.m(C.java:12)`; JS/Go/Rust `path:line`
_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)(?:, in ([\w<>.]+))?')
_JAVA_FRAME = re.compile(r"\bat ([\w$.]+)\.([\w$<>]+)\(([\w$]+\.\w+):(\d+)\)")
_LINE_FRAME = re.compile(r"((?:[\w.-]+/)*[\w.-]+\.\w{1,5}):(\d+)(?::\d+)?")
# A name called with arguments in a long query's code (`ccode(sinc(x))`, `M.col_join(B)`): the names an issue's
# example exercises. Python's builtins say nothing about the repository.
_CALL = re.compile(r"(?<![\w$])([A-Za-z_$][\w$]{2,})\((?!\))")
_BUILTIN_CALLS = frozenset({"len", "range", "str", "int", "float", "list", "dict", "set", "tuple", "isinstance",
                            "type", "repr", "sorted", "open", "super", "getattr", "setattr", "hasattr", "zip", "map",
                            "filter", "sum", "min", "max", "abs", "round", "bool", "iter", "next", "enumerate",
                            "object", "format", "frozenset", "callable", "reversed", "any", "all", "hash", "vars"})
_GENERIC_WORDS = frozenset({"self", "cls", "this", "none", "null", "true", "false", "nil", "return", "def", "class",
                            "import", "from", "print", "error", "traceback", "file", "line", "most", "recent",
                            "call", "last", "python", "the"})


@dataclass(frozen=True, slots=True)
class Frame:
    path: str
    line: int | None
    function: str | None


@dataclass(slots=True)
class Query:
    text: str
    kind: QueryKind
    identifiers: list[str] = field(default_factory=list)  # as written, qualified with '.', most telling first
    paths: list[str] = field(default_factory=list)  # file paths named in the text
    frames: list[Frame] = field(default_factory=list)
    asks_for: frozenset[str] = frozenset()  # path roles the query (a long one: its title) mentions: not demoted
    words: list[str] = field(default_factory=list)  # the tokenizer's terms (a long query's: its title's), for paths

    @property
    def names(self) -> list[str]:
        """The last part of each identifier, lower-cased, without repeats: what the symbol table is asked for."""
        seen: dict[str, None] = {}
        for ident in self.identifiers:
            seen.setdefault(ident.rsplit(".", 1)[-1].lower(), None)
        return list(seen)

    def focus(self) -> str:
        """The text the embedding legs embed: for a long query its prose head and the names in it, else the text."""
        if self.kind is not QueryKind.LONG:
            return self.text
        prose = _CODE_SPAN.sub(" ", self.text)
        prose = "\n".join(line for line in prose.splitlines()
                          if line.strip() and not _PY_FRAME.search(line) and not line.startswith((" ", "\t", ">>>")))
        head = re.sub(r"\s+", " ", prose).strip()[:FOCUS_CHARS]
        names = " ".join(self.identifiers[:16])
        return f"{head} {names}".strip()

    def lexical_terms(self, document_frequency: dict[str, int] | None = None, cap: int = 48) -> Counter[str]:
        """The lexical leg's terms. A short query: all its terms. A long one: the identifiers' terms, then the
        rarest other words by `document_frequency` (term -> chunks containing it), at most `cap` distinct terms."""
        terms = Counter(tokenize(self.text))
        if self.kind is not QueryKind.LONG or len(terms) <= cap:
            return terms
        named = Counter(tokenize(" ".join(self.identifiers + [f.function or "" for f in self.frames])))
        df = document_frequency or {}
        # rare first; a term the index lacks (df 0) cannot score and is dropped
        rare = sorted((t for t in terms if df.get(t, 0) > 0), key=lambda t: (df[t], t))
        chosen: dict[str, int] = {}
        for term in [t for t in named if df.get(t, 1) > 0] + rare:
            if len(chosen) >= cap:
                break
            chosen.setdefault(term, min(terms.get(term, 1), 3))  # repeats count, but a log line can't dominate
        return Counter(chosen)


def classify(text: str) -> QueryKind:
    stripped = text.strip()
    if len(stripped) > LONG_CHARS or stripped.count("\n") + 1 >= LONG_LINES:
        return QueryKind.LONG
    if _SYMBOL.match(stripped.strip("`'\"")):
        # one plain lower-case word is a symbol too (`hello`): a name is what the user typed
        return QueryKind.SYMBOL
    if "`" in stripped or any(_CODE_WORD.search(w.strip("'\",;:!?()")) for w in stripped.split()):
        return QueryKind.MIXED
    return QueryKind.NATURAL


def parse(text: str) -> Query:
    kind = classify(text)
    stripped = text.strip()
    identifiers: list[str] = []
    if kind is QueryKind.SYMBOL:
        identifiers.append(_normalise(stripped.strip("`'\"")))
    else:
        for match in _CODE_SPAN.finditer(stripped):
            span = match.group(2)
            if span and _SYMBOL.match(span.strip()):
                identifiers.append(_normalise(span.strip()))
        for word in _WORD.findall(_CODE_SPAN.sub(lambda m: f" {m.group(1) or ''} ", stripped)
                                  if kind is QueryKind.LONG else stripped):
            if _CODE_WORD.search(word) and not _PATH.fullmatch(word):
                identifiers.append(_normalise(word))
    frames = _frames(stripped) if kind is QueryKind.LONG else []
    if kind is QueryKind.LONG:
        identifiers.extend(name for name in _CALL.findall(stripped) if name not in _BUILTIN_CALLS)
    identifiers.extend(f.function for f in frames if f.function and not f.function.startswith("<"))
    # A long query's title says what it is about; its body mentions paths' words (and tests) in passing
    about = _title(stripped) if kind is QueryKind.LONG else stripped
    words = tokenize(about)
    lowered = {w.lower() for w in re.findall(r"[\w.]+", about)}
    asks_for = frozenset(role for role, role_words in ROLE_WORDS.items() if lowered & role_words)
    return Query(text=text, kind=kind, identifiers=_ranked_identifiers(identifiers),
                 paths=list(dict.fromkeys(m.group(1) for m in _PATH.finditer(stripped)))[:MAX_FRAMES],
                 frames=frames, asks_for=asks_for, words=words)


def _title(text: str) -> str:
    """The first line of an issue-like text when it reads as a title (short), else nothing."""
    first = text.split("\n", 1)[0].strip()
    return first if len(first) <= TITLE_CHARS else ""


def _normalise(identifier: str) -> str:
    """`Rack::Builder` -> `Rack.Builder`, `Flask#url_for` -> `Flask.url_for`, `f()` -> `f`."""
    return _SEPARATORS.sub(".", identifier.removesuffix("()")).strip(".")


def _ranked_identifiers(identifiers: list[str]) -> list[str]:
    """Without repeats, most mentioned first, generic words left out, at most MAX_IDENTIFIERS."""
    counts = Counter(i for i in identifiers if i.lower() not in _GENERIC_WORDS and i.lower() not in STOP_WORDS)
    first = {ident: n for n, ident in reversed(list(enumerate(identifiers)))}
    return sorted(counts, key=lambda i: (-counts[i], first[i]))[:MAX_IDENTIFIERS]


def _frames(text: str) -> list[Frame]:
    frames: list[Frame] = []
    for match in _PY_FRAME.finditer(text):
        frames.append(Frame(match.group(1), int(match.group(2)), match.group(3)))
    for match in _JAVA_FRAME.finditer(text):
        package = match.group(1).rsplit(".", 1)[0].replace(".", "/")
        frames.append(Frame(f"{package}/{match.group(3)}", int(match.group(4)), match.group(2)))
    if not frames:
        for match in _LINE_FRAME.finditer(text):
            if _PATH.fullmatch(match.group(1)):
                frames.append(Frame(match.group(1), int(match.group(2)), None))
    return list(dict.fromkeys(frames))[:MAX_FRAMES]

"""The ranking stage after fusion: priors that know code, each a factor on a chunk's fused score.

- definition: the chunk defines a name the query asks for (exact name, qualified suffix, names in prose or in
  traceback frames); the symbol table also brings in definitions no leg found;
- path: query words in the file's stem or parent folder (stemmed, so `dependency` meets `dependencies`, and with
  the abbreviations code uses for common words, so `implementations` meets `impls.rs` and `websocket` `client_ws.py`);
- role: tests, examples, docs sources, compat shims, vendored, generated and .d.ts files, and internal modules
  behind the public ones, are demoted, unless the query mentions that role (lode/search/paths.py) -- a factor,
  never a filter;
- frame: the file is named in the query (a traceback frame: strong; a path in prose: weaker);
- version: a file under an older version folder (`v3/`) than a sibling candidate's (`v4/` under the same parent)
  is demoted, unless the query names that version: the superseded copy of an API defines the same names;
- coherence: a file with several good chunks rises;
- saturation: a file's second, third... chunk in the list is damped, so one file cannot fill the page.

Each prior can be switched off by name (LODE_RANKING_DISABLE) and the whole stage by LODE_RANKING=off, for
ablations. Every factor applied is reported in the hit's legs (`priors`), so a ranking can be explained.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from lode.search.paths import path_roles
from lode.search.query import Query, QueryKind
from lode.search.tokens import tokenize

PRIORS = ("definition", "path", "role", "version", "frame", "coherence", "saturation")
DEFINITION_KINDS = frozenset({"function", "method", "class", "struct", "interface", "trait", "enum", "type",
                              "module_def", "macro", "constant"})

# definition factor by query kind: (qualified suffix matches, exact name, same name in another case)
DEFINITION_FACTORS: dict[QueryKind, tuple[float, float, float]] = {
    QueryKind.SYMBOL: (4.0, 3.0, 1.8),
    QueryKind.MIXED: (2.0, 1.7, 1.2),
    QueryKind.LONG: (3.0, 2.0, 1.1),
    QueryKind.NATURAL: (1.3, 1.2, 1.0),
}
ROLE_FACTORS = {"test": 0.5, "example": 0.6, "docs": 0.6, "compat": 0.8, "vendored": 0.5, "generated": 0.5,
                "declaration": 0.7, "internal": 0.8}
PATH_STEM_WEIGHT = 0.5  # per query term in the file's stem (at most PATH_MAX_TERMS of them)
PATH_FOLDER_WEIGHT = 0.2  # per query term in the parent folder's name
# a module's file named for its folder: the folder's name is its stem (`middleware/mod.rs`, `routing/__init__.py`)
FOLDER_MODULE_STEMS = frozenset({"mod", "__init__", "index", "lib", "main", "init", "package-info"})
PATH_MAX_TERMS = 2
# Words and the abbreviations file names use for them; either side in a query meets the other in a path.
ABBREVIATIONS = {
    "implementation": ("impl",), "configuration": ("config", "conf", "cfg"), "websocket": ("ws",),
    "request": ("req",), "response": ("resp",), "authentication": ("auth",), "initialize": ("init",),
    "context": ("ctx",), "error": ("err",), "message": ("msg",), "argument": ("arg",), "parameter": ("param",),
    "directory": ("dir",), "environment": ("env",), "database": ("db",), "library": ("lib",),
    "synchronous": ("sync",), "asynchronous": ("async",), "temporary": ("tmp",), "attribute": ("attr",),
    "function": ("fn", "func"), "command": ("cmd",), "number": ("num",), "memory": ("mem",), "buffer": ("buf",),
    "reference": ("ref",), "expression": ("expr",), "option": ("opt",), "sequence": ("seq",),
    "manager": ("mgr",), "address": ("addr",), "information": ("info",), "serialize": ("ser",),
    "standard": ("std",),
}
FRAME_FACTOR = 2.0  # the file is in a traceback of the query
FRAME_LINE_FACTOR = 1.5  # ... and the chunk holds the frame's line
NAMED_PATH_FACTOR = 1.5  # the file's path is written in the query
SUPERSEDED_FACTOR = 0.7  # the file is under an older version folder than another candidate's
COHERENCE_WEIGHT = 0.2
SATURATION = 0.6  # the n-th chunk of a file in the list (0-based) is multiplied by SATURATION**n
INJECTED_SHARE = 0.5  # a chunk no leg found starts at this share of the best fused score


@dataclass(slots=True)
class Candidate:
    chunk_id: int
    path: str
    kind: str
    name: str | None
    name_path: str | None
    start_line: int
    end_line: int
    score: float  # the fused score (0 for a chunk brought in by the symbol table or a frame)
    legs: dict[str, int | None]
    repo_id: int = 0
    injected: str | None = None  # why a chunk no leg found is here: "definition" or "frame"


@dataclass(slots=True)
class Ranked:
    candidate: Candidate
    score: float
    factors: dict[str, float] = field(default_factory=dict)  # rounded, for display
    unsaturated: float = 0.0  # the score before saturation: what ranks the chunk's file

    @property
    def file(self) -> tuple[int, str]:
        return self.candidate.repo_id, self.candidate.path


def rank(query: Query, candidates: list[Candidate], disabled: frozenset[str] = frozenset()) -> list[Ranked]:
    """The candidates with every prior not `disabled` applied, best first (saturation included)."""
    if not candidates:
        return []
    top = max((c.score for c in candidates), default=0.0) or 1.0
    words = path_words(query)
    newest = newest_versions(candidates) if "version" not in disabled else {}
    ranked = []
    for c in candidates:
        factors: dict[str, float] = {}
        if "definition" not in disabled:
            _put(factors, "definition", definition_factor(query, c))
        if "path" not in disabled and words:
            _put(factors, "path", path_factor(words, c.path))
        if "role" not in disabled:
            _put(factors, "role", role_factor(c.path, query.asks_for))
        if "version" not in disabled and newest:
            _put(factors, "version", version_factor(c, newest, words))
        if "frame" not in disabled and (query.frames or query.paths):
            _put(factors, "frame", frame_factor(query, c))
        base = c.score if not c.injected else INJECTED_SHARE * top
        ranked.append(Ranked(c, base * math.prod(factors.values()), factors))
    if "coherence" not in disabled:
        _apply_coherence(ranked)
    ranked.sort(key=_order)
    if "saturation" not in disabled:
        ranked = saturate(ranked)
    return ranked


def definition_factor(query: Query, c: Candidate) -> float:
    if c.kind not in DEFINITION_KINDS or not c.name or not query.identifiers:
        return 1.0
    qualified, exact, other_case = DEFINITION_FACTORS[query.kind]
    best = 1.0
    for ident in query.identifiers:
        last = ident.rsplit(".", 1)[-1]
        if c.name == last:
            if "." in ident and c.name_path and (c.name_path == ident or c.name_path.endswith("." + ident)):
                return qualified
            best = max(best, exact)
        elif c.name.lower() == last.lower():
            best = max(best, other_case)
    return best


def _abbreviation_groups() -> dict[str, frozenset[str]]:
    """Each term of ABBREVIATIONS (as the tokenizer stems it) -> the terms it stands for or is short for."""
    groups: dict[str, set[str]] = defaultdict(set)
    for word, shorts in ABBREVIATIONS.items():
        group = {tokenize(word)[-1], *(tokenize(short)[0] for short in shorts)}
        for term in group:
            groups[term] |= group - {term}
    return {term: frozenset(others) for term, others in groups.items()}


_ABBREVIATION_GROUPS = _abbreviation_groups()


def path_words(query: Query) -> set[str]:
    """The query's terms for the path prior, with the abbreviations of each (and the words they abbreviate)."""
    words = set(query.words) - {""}
    return words.union(*(_ABBREVIATION_GROUPS.get(w, ()) for w in words))


def path_factor(words: set[str], path: str) -> float:
    """Query terms (tokenizer terms: stemmed, identifier parts) found in the file's stem and parent folder."""
    pure = PurePosixPath(path)
    if pure.name.split(".", 1)[0] in FOLDER_MODULE_STEMS:
        pure = pure.parent
    stem = set(tokenize(pure.name.split(".", 1)[0]))
    folder = set(tokenize(pure.parent.name))
    in_stem = min(len(words & stem), PATH_MAX_TERMS)
    in_folder = min(len(words & folder - stem), PATH_MAX_TERMS)
    return 1.0 + PATH_STEM_WEIGHT * in_stem + PATH_FOLDER_WEIGHT * in_folder


def role_factor(path: str, asked: frozenset[str]) -> float:
    return math.prod(ROLE_FACTORS[role] for role in path_roles(path) if role not in asked)


_VERSION_FOLDER = re.compile(r"v(\d{1,3})")


def _version_folder(path: str) -> tuple[str, int] | None:
    """(the folder above the version folder, the version) for `pkg/src/v3/types.ts`; None without one."""
    parts = path.split("/")[:-1]
    for i, part in enumerate(parts):
        match = _VERSION_FOLDER.fullmatch(part)
        if match:
            return "/".join(parts[:i]), int(match.group(1))
    return None


def newest_versions(candidates: list[Candidate]) -> dict[tuple[int, str], int]:
    """Per (repository, parent folder) with more than one version folder among the candidates: the newest."""
    seen: dict[tuple[int, str], set[int]] = defaultdict(set)
    for c in candidates:
        found = _version_folder(c.path)
        if found:
            seen[(c.repo_id, found[0])].add(found[1])
    return {key: max(versions) for key, versions in seen.items() if len(versions) > 1}


def version_factor(c: Candidate, newest: dict[tuple[int, str], int], words: set[str]) -> float:
    found = _version_folder(c.path)
    if not found or f"v{found[1]}" in words:
        return 1.0
    latest = newest.get((c.repo_id, found[0]))
    return SUPERSEDED_FACTOR if latest is not None and found[1] < latest else 1.0


def frame_factor(query: Query, c: Candidate) -> float:
    factor = 1.0
    for frame in query.frames:
        if _same_file(frame.path, c.path):
            line = frame.line is not None and c.start_line <= frame.line <= c.end_line
            factor = max(factor, FRAME_FACTOR * (FRAME_LINE_FACTOR if line else 1.0))
    if factor == 1.0 and any(_same_file(named, c.path) for named in query.paths):
        factor = NAMED_PATH_FACTOR
    return factor


def _same_file(named: str, path: str) -> bool:
    """A path in the query names an indexed file when one ends with the other at a folder boundary."""
    named = named.replace("\\", "/").lstrip("./")
    if len(named) < len(path):
        return path.endswith("/" + named) and "/" in named  # a bare file name is too weak a claim
    return named == path or named.endswith("/" + path)


def path_suffixes(named: str) -> list[str]:
    """Every tail of a path at a folder boundary with a folder in it: the indexed paths it may name."""
    parts = named.replace("\\", "/").lstrip("./").split("/")
    return ["/".join(parts[i:]) for i in range(len(parts) - 1)]


def _apply_coherence(ranked: list[Ranked]) -> None:
    """Lift each chunk by the support of the other chunks of its file (their scores over the best score)."""
    top = max(r.score for r in ranked) or 1.0
    by_file: dict[tuple[int, str], list[Ranked]] = defaultdict(list)
    for r in ranked:
        by_file[r.file].append(r)
    lifts: list[tuple[Ranked, float]] = []
    for group in by_file.values():
        if len(group) < 2:
            continue
        scores = sorted((r.score for r in group), reverse=True)
        for r in group:
            others = list(scores)
            others.remove(r.score)
            lifts.append((r, 1.0 + COHERENCE_WEIGHT * min(sum(others[:3]) / top, 1.0)))
    for r, factor in lifts:
        _put(r.factors, "coherence", factor)
        r.score *= factor


def saturate(ranked: list[Ranked]) -> list[Ranked]:
    """Damp a file's later chunks by SATURATION per chunk of the same file ranked before them; re-sort."""
    seen: dict[tuple[int, str], int] = defaultdict(int)
    for r in ranked:
        r.unsaturated = r.score
        before = seen[r.file]
        seen[r.file] += 1
        if before:
            factor = SATURATION**before
            r.factors["saturation"] = _shown(factor)
            r.score *= factor
    return sorted(ranked, key=_order)


@dataclass(slots=True)
class RankedFile:
    repo_id: int
    path: str
    score: float
    evidence: list[Ranked]


def files(ranked: list[Ranked], evidence: int = 3) -> list[RankedFile]:
    """Files best first, each scored by its best chunk before saturation, with its best chunks as evidence."""
    by_file: dict[tuple[int, str], list[Ranked]] = {}
    for r in ranked:
        by_file.setdefault(r.file, []).append(r)
    out = []
    for (repo_id, path), group in by_file.items():
        best = max(r.unsaturated or r.score for r in group)
        out.append(RankedFile(repo_id, path, best, group[:evidence]))
    return sorted(out, key=lambda f: (-f.score, f.path))


def _put(factors: dict[str, float], name: str, value: float) -> None:
    if value != 1.0:
        factors[name] = _shown(value)


def _shown(factor: float) -> float:
    return float(f"{factor:.4g}")


def _order(r: Ranked) -> tuple[float, int]:
    return -r.score, r.candidate.chunk_id

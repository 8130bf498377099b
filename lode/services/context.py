"""Context for a change (MCP's get_context, `lode context`, GET /v1/context): the code a search or a symbol
finds, expanded along the graph to its callers, callees and tests, packed under a token budget."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from lode.languages import language_for_path
from lode.errors import InputError
from lode.model import Mode
from lode.search.paths import is_test_path
from lode.services.base import RepoScope, Service

MIN_BUDGET = 100
MAX_BUDGET = 100_000
DEFAULT_BUDGET = 4000

_PIECES = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """An estimate of LLM tokens, leaning high: one per 3 characters, and never fewer than the words and symbols.

    LLM tokenizers are usually quoted at 3.5-4 characters per token of source code; the word/symbol floor covers
    punctuation-dense text. The client's own tokenizer is unknown here, so budgets hold for this count (README).
    """
    return max(math.ceil(len(text) / 3), len(_PIECES.findall(text)))


@dataclass
class _Item:
    role: str  # definition | caller | callee | test | hit
    repo: str
    name: str
    path: str
    start_line: int
    end_line: int
    language: str
    focus_line: int  # the line to keep when the text is cut (a caller's call site)
    focus_pattern: re.Pattern[str] | None = None  # or the first line that matches this
    text: str = ""

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.repo, self.path, self.start_line, self.end_line)

    def cite(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def piece(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name, "repo": self.repo, "path": self.path,
                "start_line": self.start_line, "end_line": self.end_line}

    def render(self, max_lines: int | None = None) -> str:
        lines = self.text.splitlines()
        shown = f"{self.cite()}"
        if max_lines is not None and max_lines < len(lines):
            first = min(max(0, self.focus_line - self.start_line - max_lines // 2), len(lines) - max_lines)
            lines = lines[first : first + max_lines]
            shown += f", lines {self.start_line + first}-{self.start_line + first + max_lines - 1} shown"
        body = "\n".join(lines)
        return f"### {self.role}: {self.name} ({shown}, repo {self.repo})\n```{self.language}\n{body}\n```"


class ContextPacker:
    """Adds rendered items in priority order while the whole text stays within the budget.

    An item that does not fit whole is cut to the lines around its focus line (at least `min_lines`); one that
    does not fit even so is dropped and listed, with its citation, in the closing lines. Characters and pieces
    add up over blocks joined by blank lines, so the running totals give `count_tokens` of the whole text.
    """

    min_lines = 4
    separator = "\n\n"

    def __init__(self, header: str, budget: int) -> None:
        self.budget = budget
        self.blocks: list[str] = []
        self.chars = self.pieces = 0
        self.dropped: list[_Item] = []
        self.included: list[_Item] = []
        self.placeholder = 10 ** len(str(budget)) - 1  # as many digits as any count within the budget
        self.reserve = self._footer(dropped_count=99_999)  # the longest unlisted footer
        if not self._fits(header, self.reserve):
            raise InputError(f"budget_tokens={budget} cannot hold even the header; use at least {MIN_BUDGET}")
        self._append(header)

    def _fits(self, *extra: str) -> bool:
        chars = self.chars + sum(len(e) for e in extra) + len(self.separator) * (len(self.blocks) + len(extra) - 1)
        pieces = self.pieces + sum(len(_PIECES.findall(e)) for e in extra)
        return max(math.ceil(chars / 3), pieces) <= self.budget

    def _append(self, block: str) -> None:
        self.blocks.append(block)
        self.chars += len(block)
        self.pieces += len(_PIECES.findall(block))

    def add(self, item: _Item) -> None:
        whole = item.render()
        if self._fits(whole, self.reserve):
            self._append(whole)
            self.included.append(item)
            return
        low, high, best = self.min_lines, len(item.text.splitlines()) - 1, None
        while low <= high:  # the most lines around the focus that fit
            middle = (low + high) // 2
            if self._fits(item.render(middle), self.reserve):
                best, low = middle, middle + 1
            else:
                high = middle - 1
        if best is None:
            self.dropped.append(item)
        else:
            self._append(item.render(best))
            self.included.append(item)

    def _footer(self, listed: int = 0, dropped_count: int = 0) -> str:
        """The closing lines: the first `listed` dropped items with their citations, then how many more."""
        lines = []
        if listed:
            lines.append("Dropped for the budget: " + "; ".join(
                f"{d.role} {d.name} {d.cite()}" for d in self.dropped[:listed]))
        if dropped_count > listed:
            lines.append(f"{'And' if listed else 'Dropped for the budget:'} {dropped_count - listed} more items.")
        lines.append(f"[~{self.placeholder} of {self.budget} tokens, estimated at 3 characters per token]")
        return "\n".join(lines)

    def result(self) -> dict[str, Any]:
        """The text, and (for structured output) every item included and every one dropped."""
        text = self.text()
        return {"text": text, "tokens": count_tokens(text), "budget_tokens": self.budget,
                "included": [item.piece() for item in self.included],
                "dropped": [item.piece() for item in self.dropped]}

    def text(self) -> str:
        listed = len(self.dropped)
        while listed and not self._fits(self._footer(listed, len(self.dropped))):
            listed -= 1
        footer = self._footer(listed, len(self.dropped))
        draft = self.separator.join([*self.blocks, footer])  # the unlisted form fits: every add kept room for it
        final = draft.replace(f"[~{self.placeholder} of", f"[~{count_tokens(draft)} of")  # no longer: same count
        assert count_tokens(final) <= self.budget
        return final


class ContextService(Service):
    """get_context: seeds from a search or a symbol, expanded along the graph, packed under a token budget."""

    max_seeds = 3
    max_neighbours = 8
    max_tests = 3

    def build(self, query: str | None = None, symbol: str | None = None, *, repo: RepoScope = None,
              budget: int | None = None, mode: Mode | str = Mode.HYBRID) -> dict[str, Any]:
        """The text and its pieces (included, and dropped for the budget) for a query or a symbol, not both;
        `budget` is in estimated tokens (count_tokens), DEFAULT_BUDGET when None."""
        budget = DEFAULT_BUDGET if budget is None else budget
        if (query is None) == (symbol is None):
            raise InputError("pass exactly one of query or symbol")
        if not MIN_BUDGET <= budget <= MAX_BUDGET:
            raise InputError(f"the token budget must be between {MIN_BUDGET} and {MAX_BUDGET}, not {budget}")
        if symbol is not None:
            callers = self.lode.graph.neighbours("callers", symbol, repo=repo, limit=self.max_neighbours)
            node = callers["symbol"]
            if node["external"]:
                raise InputError(f"{symbol!r} is defined outside the indexed repositories ({node['name_path']})")
            seeds = [self._item("definition", node)]
            neighbours = {node["name_path"]: callers}
            header = f"Context for symbol {node['name_path']}"
        else:
            assert query is not None  # exactly one of them, checked above
            found = self.lode.search.query(query, repo=repo, mode=mode, k=5)
            seeds = [self._item("hit", hit, name=hit["name_path"] or hit["name"] or hit["kind"])
                     for hit in found["hits"]]
            if not seeds:
                text = f"No code matches {query!r}." + (f" (legs not used: {', '.join(found['degraded'])})"
                                                        if found["degraded"] else "")
                return {"text": text, "tokens": count_tokens(text), "budget_tokens": budget, "included": [],
                        "dropped": []}
            neighbours = {}
            header = f"Context for query {query!r} ({found['mode']})"
        packer = ContextPacker(header, budget)
        seen: set[tuple[str, str, int, int]] = set()
        for item in seeds:
            seen.add(item.key)
            self._fill(item)
            packer.add(item)
        expanded = [s for s in seeds if s.role == "definition" or "." in s.name][: self.max_seeds]
        for seed in expanded:
            for item in self._expansion(seed, neighbours.get(seed.name)):
                if item.key not in seen:
                    seen.add(item.key)
                    self._fill(item)
                    packer.add(item)
        return packer.result()

    def _expansion(self, seed: _Item, callers: dict[str, Any] | None) -> list[_Item]:
        try:
            if callers is None:
                callers = self.lode.graph.neighbours("callers", seed.name, repo=seed.repo, limit=self.max_neighbours)
            callees = self.lode.graph.neighbours("callees", seed.name, repo=seed.repo, limit=self.max_neighbours)
        except InputError:  # a hit with no graph node of its own (a window, an ambiguous name)
            return self._tests(seed)
        items = [self._item("caller", hop, focus=_evidence_line(hop)) for hop in callers["results"]]
        items += [self._item("callee", hop) for hop in callees["results"] if not hop["external"]]
        return items + self._tests(seed)

    def _tests(self, seed: _Item) -> list[_Item]:
        short = seed.name.rsplit(".", 1)[-1]
        if not short.isidentifier():
            return []
        mention = re.compile(rf"\b{re.escape(short)}\b")
        hits = self.lode.search.query(short, repo=seed.repo, mode=Mode.LEXICAL, k=50)["hits"]
        tests = [h for h in hits if is_test_path(h["path"]) and mention.search(h["snippet"])]
        items = [self._item("test", h, name=h["name_path"] or h["name"] or h["path"]) for h in tests[: self.max_tests]]
        for item in items:
            item.focus_pattern = mention
        return items

    def _item(self, role: str, node: dict[str, Any], *, name: str | None = None, focus: int | None = None) -> _Item:
        return _Item(role=role, repo=node["repo"], name=name or node["name_path"], path=node["path"],
                     start_line=node["start_line"], end_line=node["end_line"], language=node.get("language") or "",
                     focus_line=focus or node["start_line"])

    def _fill(self, item: _Item) -> None:
        item.text = self.lode.files.source(item.repo, item.path, item.start_line, item.end_line)
        item.language = item.language or language_for_path(item.path) or ""
        if item.focus_pattern is not None:  # a test: keep the line that mentions the symbol
            lines = item.text.splitlines()
            first = next((i for i, line in enumerate(lines) if item.focus_pattern.search(line)), 0)
            item.focus_line = item.start_line + first


def _evidence_line(hop: dict[str, Any]) -> int | None:
    line = str(hop.get("evidence") or "").rsplit(":", 1)[-1]
    return int(line) if line.isdigit() else None

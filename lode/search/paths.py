"""What a file's path says about its role: test, example, docs source, compat shim, vendored, generated, a
TypeScript declaration or an internal (private) module behind the public one. One set of patterns for the whole
project (ranking priors, MCP context); a test file's name follows its language's convention (Language.test_paths).

A path has no role when it is ordinary source. Patterns look at folder names and file names only, so
`lode/contest.py` or `src/testing_utils.md` are not tests while `pkg/testing/` (a test-support package) is.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lode import languages

ROLES = ("test", "example", "docs", "compat", "vendored", "generated", "declaration", "internal")

_TEST_FOLDERS = r"(^|/)(tests?|__tests__|__mocks__|spec|specs|testing|testdata|test_?utils?|fixtures?)/"
_TEST_FILES = dict.fromkeys(pattern for language in languages.all() for pattern in language.test_paths)

_PATTERNS: dict[str, re.Pattern[str]] = {
    "test": re.compile("|".join((_TEST_FOLDERS, *_TEST_FILES))),
    "example": re.compile(r"(^|/)(examples?|samples?|demos?|_examples|example_[^/]*)/|(^|/)examples?\.[^/]+$"),
    "docs": re.compile(r"(^|/)(docs?|documentation|doc_src|docs_src|site)/"),
    "compat": re.compile(r"(^|/)(compat|legacy|deprecated|shims?|polyfills?|backports?)(/|\.[^/]+$|_[^/]*$)"),
    "vendored": re.compile(r"(^|/)(vendor|vendored|third_party|thirdparty|3rdparty|external|extern|node_modules)/"),
    "generated": re.compile(
        r"(^|/)(generated|gen|__generated__|autogen)/|_pb2(_grpc)?\.py$|\.pb\.(go|cc|h)$|_generated\.[^/]+$"
        r"|\.(generated|gen)\.[^/]+$|\.min\.js$"
    ),
    "declaration": re.compile(r"\.d\.[cm]?ts$"),
    "internal": re.compile(r"(^|/)_?(internal|private)/"),
}

# Words in a query that ask for a role: then that role is not demoted.
ROLE_WORDS: dict[str, frozenset[str]] = {
    "test": frozenset({"test", "tests", "testing", "tested", "spec", "specs", "fixture", "fixtures", "mock",
                       "mocks", "unittest", "pytest", "conftest", "testcase"}),
    "example": frozenset({"example", "examples", "sample", "samples", "demo", "demos", "tutorial"}),
    "docs": frozenset({"doc", "docs", "documentation", "tutorial", "guide"}),
    "compat": frozenset({"compat", "compatibility", "legacy", "deprecated", "shim", "polyfill", "backport"}),
    "vendored": frozenset({"vendor", "vendored", "third_party", "thirdparty"}),
    "generated": frozenset({"generated", "protobuf", "codegen"}),
    "declaration": frozenset({"declaration", "declarations", "typings", "d.ts"}),
    "internal": frozenset({"internal", "internals", "private"}),
}


@lru_cache(maxsize=65_536)
def path_roles(path: str) -> frozenset[str]:
    """The roles `path` (relative, '/'-separated) has; empty for ordinary source."""
    return frozenset(role for role, pattern in _PATTERNS.items() if pattern.search(path))


def is_test_path(path: str) -> bool:
    return "test" in path_roles(path)

"""Small source trees written to disk for indexing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PY_MODELS = '''"""Models for the tiny package."""


class Request:
    """An HTTP request."""

    def __init__(self, url):
        self.url = url
        self.hooks = {}

    def register_hook(self, event, hook):
        """Register a hook for an event."""
        self.hooks.setdefault(event, []).append(hook)
'''

PY_UTIL = '''def parse_header_links(value):
    """Return a list of parsed link headers."""
    return [part.strip() for part in value.split(",")]
'''

TS_APP = '''export class Router {
  routes: string[] = [];
  addRoute(path: string): void {
    this.routes.push(path);
  }
}

export function startServer(port: number): Router {
  return new Router();
}
'''


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def base_tree() -> dict[str, str]:
    return {
        "tiny/__init__.py": "from .models import Request\n",
        "tiny/models.py": PY_MODELS,
        "tiny/util.py": PY_UTIL,
        "web/app.ts": TS_APP,
        "README.md": "# Tiny\n\nA tiny package used to test Lode.\n",
    }


# four files that the lexical and the semantic legs each find something in
SEMANTIC_CORPUS = {
    "io/readers.py": "def slurp(fh):\n    \"\"\"Return every row of the handle.\"\"\"\n    return [r for r in fh]\n",
    "net/http.py": "def send_request(url, payload):\n    \"\"\"Post the payload to the url.\"\"\"\n"
                   "    return post(url, payload)\n",
    "util/strings.py": "def frobnicate_zq(value):\n    \"\"\"Reverse a string.\"\"\"\n    return value[::-1]\n",
    "util/math.py": "def add(a, b):\n    return a + b\n",
}


# a package whose modules import one another, for the cache tests
CACHE_CORPUS = {
    "pkg/__init__.py": '"""Readers, senders and strings."""\n',
    "pkg/readers.py": ('def slurp(fh):\n    """Return every row of the handle."""\n'
                       "    return [parse_row(r) for r in fh]\n"
                       "\n\ndef parse_row(row):\n    return row.strip()\n"),
    "pkg/net.py": ("from pkg.readers import slurp\n\n\ndef send_request(url, payload):\n"
                   '    """Post the payload to the url."""\n    return slurp(open(url))\n'),
    "pkg/strings.py": 'def frobnicate_zq(value):\n    """Reverse a string."""\n    return value[::-1]\n',
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(("git", "-C", str(repo), *args), check=True, capture_output=True)


def write(root: Path, rel: str, data: bytes | str = "print('hi')\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def git_tree_through_symlinked_directories(tmp_path: Path) -> Path:
    """A work tree whose index lists etc/passwd and alias/x.py while etc is a symlink to a directory outside
    the root and alias one to a directory inside it (committed as plain directories, swapped afterwards)."""
    root, outside = tmp_path / "work", tmp_path / "outside"
    write(outside, "passwd", "root:x:0:0:OUTSIDE_SECRET:/root:/bin/sh\n")
    write(root, "etc/passwd", "committed\n")
    write(root, "real/x.py", "x = 1\n")
    write(root, "alias/x.py", "x = 1\n")
    write(root, "ok.py")
    git(root, "init", "-q")
    git(root, "add", ".")
    for name, target in (("etc", outside), ("alias", root / "real")):
        for child in (root / name).iterdir():
            child.unlink()
        (root / name).rmdir()
        os.symlink(target, root / name)
    return root

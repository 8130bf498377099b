"""Small source trees written to disk for indexing."""

from __future__ import annotations

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

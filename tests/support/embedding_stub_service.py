"""A stand-in for a remote OpenAI-compatible embedding service, run as a real process by the tests.

Vectors are deterministic: hashed bags of words, with a few synonyms folded together so that a query can be
"semantically" close to code that shares none of its words. Usage:
    python tests/support/embedding_stub_service.py PORT [--delay SECONDS] [--model NAME] [--dim N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SYNONYMS = {"slurp": "read", "fetch": "read", "load": "read", "lines": "line", "rows": "line",
            "fh": "file", "handle": "file", "document": "file", "text": "file"}


def vector(text: str, dim: int) -> list[float]:
    values = [0.0] * dim
    for word in re.findall(r"[a-z]+", text.lower()):
        word = SYNONYMS.get(word, word)
        values[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values] if any(values) else [1.0 / math.sqrt(dim)] * dim


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--model", default="stub-a")
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            if any("POISON" in text for text in inputs):
                self._send(400, {"error": {"message": "input rejected"}})
                return
            time.sleep(args.delay)
            data = [{"index": i, "embedding": vector(text, args.dim), "object": "embedding"}
                    for i, text in enumerate(inputs)]
            self._send(200, {"data": data, "model": args.model, "object": "list"})

        def _send(self, status: int, payload: dict) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

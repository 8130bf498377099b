"""HTTP/1.1 written byte for byte, so that a test sets Host, Origin and X-Forwarded-For exactly as an attacker
would (no client library picks or fixes them), optionally from a chosen source address.

Also runnable as a script, for a caller inside a network namespace (tests/support/netns.py):
`python tests/support/rawhttp.py '{"address": ..., "port": ..., "method": ..., "path": ..., "headers": {...}}'` prints
the answer as one JSON document.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self, status: int) -> dict[str, Any]:
        """The JSON error document of an answer that must have this status."""
        assert self.status == status, f"expected {status}, got {self.status}: {self.body[:500]}"
        document = self.json()
        assert set(document) == {"error"} and document["error"]["message"], document
        return document["error"]


def request(address: str, port: int, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None,
            body: bytes | str = b"", source: str | None = None, timeout: float = 60) -> Answer:
    """One request on its own connection. Host defaults to address:port; pass {"Host": None} to send none."""
    body = body.encode() if isinstance(body, str) else body
    given = {"Host": f"[{address}]:{port}" if ":" in address else f"{address}:{port}", **(headers or {})}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in given.items() if v is not None),
             "Connection: close", f"Content-Length: {len(body)}"]
    if body and not any(k.lower() == "content-type" for k in given):
        lines.append("Content-Type: application/json")
    with socket.create_connection((address, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    head, _, payload = bytes(received).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    if parsed.get("transfer-encoding") == "chunked":
        payload = _unchunk(payload)
    return Answer(int(status_line.split()[1]), parsed, payload.decode("utf-8", "replace"))


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)


if __name__ == "__main__":
    print(json.dumps(asdict(request(**json.loads(sys.argv[1])))))

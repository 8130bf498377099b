"""A second host on this machine, for callers that are not on loopback: a network namespace joined to this one
by a veth pair. Addresses come from 198.18.0.0/15, the block set aside for network tests (RFC 2544), one random
/30 per use; traffic between the two ends never leaves the machine. Needs root and iproute2 (`ip netns`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.rawhttp import Answer

RAWHTTP = Path(__file__).with_name("rawhttp.py")


@dataclass(frozen=True)
class NamespaceHost:
    namespace: str
    here: str  # this machine's end of the link: bind a server to it
    there: str  # the test host's address: its requests come from here

    def request(self, address: str, port: int, method: str = "GET", path: str = "/",
                headers: dict[str, str] | None = None, body: str = "") -> Answer:
        """A raw HTTP request (tests/support/rawhttp.py) sent from inside the test host."""
        spec = {"address": address, "port": port, "method": method, "path": path, "headers": headers or {},
                "body": body}
        done = subprocess.run(["ip", "netns", "exec", self.namespace, sys.executable, str(RAWHTTP), json.dumps(spec)],
                              capture_output=True, text=True, timeout=90, check=True)
        return Answer(**json.loads(done.stdout))


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def namespace_host() -> Iterator[NamespaceHost]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a network-namespace test host needs root and iproute2 (ip netns)")
    tag = uuid.uuid4().hex[:6]
    namespace, near, far = f"lode-test-{tag}", f"lt{tag}h", f"lt{tag}p"  # interface names: 15 characters at most
    base = f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.{4 * random.randint(0, 63)}"
    prefix, last = base.rsplit(".", 1)
    here, there = f"{prefix}.{int(last) + 1}", f"{prefix}.{int(last) + 2}"
    try:
        _ip("netns", "add", namespace)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
    try:
        _ip("link", "add", near, "type", "veth", "peer", "name", far)
        _ip("link", "set", far, "netns", namespace)
        _ip("addr", "add", f"{here}/30", "dev", near)
        _ip("link", "set", near, "up")
        _ip("-n", namespace, "addr", "add", f"{there}/30", "dev", far)
        _ip("-n", namespace, "link", "set", far, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield NamespaceHost(namespace, here, there)
    finally:
        # deleting the namespace takes its veth end, and the near end normally goes with it
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30, check=False)
        subprocess.run(["ip", "link", "del", near], capture_output=True, timeout=30, check=False)

"""The README's install (command 1) in a fresh clone: venv size, install time on a warm pip cache, and the first
`lode index --wait` with the default embedder, for a baseline commit against another one (default: HEAD).

Usage: python bench/install_footprint.py --baseline COMMIT [--commit HEAD] [--runs 3] [--top 12]
Each commit is cloned afresh; one untimed install per commit warms pip's cache, then the timed installs
(`python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e .`, from an empty .venv) alternate
between the commits; CPU time (user + system of pip and its children) is given beside the wall time because this
machine is shared. Size: `du -sm .venv` (MiB, as `du -sh` shows it) and per installed distribution (its RECORD's
files inside the venv, MB = 10^6 bytes). `pip show torch` must fail in the new venv. Then, in a fresh LODE_HOME,
`lode index --wait --json`
of tests/fixtures/graph/pyshop: wall time (embedded PostgreSQL start included) and what it left under
LODE_HOME/models.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median

REPO = Path(__file__).resolve().parents[1]
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e ."  # README command 1's install
SAMPLE = "tests/fixtures/graph/pyshop"
DIST_SIZES = """
import json, os, sys
from importlib import metadata
sizes = {}
for dist in metadata.distributions():
    total = 0
    for file in dist.files or []:
        path = os.path.realpath(file.locate())
        if path.startswith(sys.prefix + os.sep) and os.path.isfile(path):  # not an editable install's sources
            total += os.stat(path).st_blocks * 512
    sizes[dist.metadata["Name"]] = sizes.get(dist.metadata["Name"], 0) + total
print(json.dumps(sizes))
"""


def du_mib(root: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(root)], capture_output=True, text=True, check=True).stdout.split()[0])


def install(clone: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one install from an empty .venv."""
    subprocess.run(["rm", "-rf", str(clone / ".venv")], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(INSTALL, shell=True, cwd=clone, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"install failed in {clone}:\n{done.stderr[-3000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def first_index(clone: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="lode-first-use-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LODE_")} | {"LODE_HOME": home}
        started = time.perf_counter()
        done = subprocess.run([str(clone / ".venv" / "bin" / "lode"), "index", str(REPO / SAMPLE), "--wait", "--json"],
                              cwd=clone, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        models = Path(home) / "models"
        left = sorted(p.name for p in models.iterdir()) if models.is_dir() else []
        return {"seconds": elapsed, "models": left, "models_mib": du_mib(models) if left else 0,
                "result": json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-2000:]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    commits = {name: subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True,
                                    check=True).stdout.strip() for name, ref in (("baseline", args.baseline),
                                                                                 ("new", args.commit))}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lode-install-bench-") as tmp:
        clones = {}
        for name, commit in commits.items():
            clones[name] = Path(tmp) / name
            subprocess.run(["git", "clone", "-q", str(REPO), str(clones[name])], check=True)
            subprocess.run(["git", "checkout", "-q", commit], cwd=clones[name], check=True)
            print(f"{name} {commit}: warm-up install {install(clones[name])[0]:.1f} s", file=sys.stderr, flush=True)
        times: dict[str, list[float]] = {name: [] for name in commits}
        cpu: dict[str, list[float]] = {name: [] for name in commits}
        for run in range(args.runs):
            for name in commits:
                wall, used = install(clones[name])
                times[name].append(wall)
                cpu[name].append(used)
                print(f"run {run + 1} {name}: {wall:.1f} s, CPU {used:.1f} s, load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr, flush=True)
        facts = {}
        for name, clone in clones.items():
            venv = clone / ".venv"
            sizes = json.loads(subprocess.run([str(venv / "bin" / "python"), "-c", DIST_SIZES], capture_output=True,
                                              text=True, check=True).stdout)
            torch = subprocess.run([str(venv / "bin" / "pip"), "show", "torch"], capture_output=True, text=True,
                                   check=False)
            facts[name] = {"venv_mib": du_mib(venv), "sizes": sizes, "torch": torch.returncode == 0,
                           "first_index": first_index(clone)}
            print(f"{name}: first index {facts[name]['first_index']['seconds']:.1f} s", file=sys.stderr, flush=True)

    print(f"README command 1's install (`{INSTALL}`) in a fresh clone, warm pip cache, {args.runs} timed installs "
          f"per commit, alternating; {machine()}; 1-minute load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after\n")
    print("| commit | `du -sm .venv` | install s (median) | installs s | CPU s (median) | `pip show torch` "
          "| first `lode index --wait` s | left in LODE_HOME/models |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, commit in commits.items():
        fact, first = facts[name], facts[name]["first_index"]
        left = f"{len(first['models'])} files, {first['models_mib']} MiB" if first["models"] else "nothing"
        print(f"| {name} ({commit}) | {fact['venv_mib']:,} MiB | {median(times[name]):.1f} | "
              f"{', '.join(f'{t:.1f}' for t in times[name])} | {median(cpu[name]):.1f} | "
              f"{'found' if fact['torch'] else 'not found'} | {first['seconds']:.1f} | {left} |")
    print(f"\nnew/baseline: install wall {median(times['new']) / median(times['baseline']):.2f}, install CPU "
          f"{median(cpu['new']) / median(cpu['baseline']):.2f}, "
          f"venv {facts['new']['venv_mib'] / facts['baseline']['venv_mib']:.2f}\n")
    for name in commits:
        sizes = facts[name]["sizes"]
        top = sorted(sizes.items(), key=lambda kv: -kv[1])[:args.top]
        print(f"Largest distributions, {name}: " + ", ".join(f"{dist} {size / 1e6:.0f}" for dist, size in top)
              + f" (MB; {len(sizes)} distributions)\n")
    for name in commits:
        result = facts[name]["first_index"]["result"]
        print(f"First index, {name}: {json.dumps(result)[:400]}")


if __name__ == "__main__":
    main()

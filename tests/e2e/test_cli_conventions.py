"""CLI conventions of issue 19, in real processes: fast help, flags, completion, output formats for tools, filters
that cannot match, an empty index, closed pipes, and searches handed to a running `lode serve`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from lode.engine import Lode
from tests.support.serve_process import lode_serve
from tests.support.cli import run_cli
from tests.support.trees import write_tree

HEAVY = ("numpy", "psycopg", "pydantic_settings", "lode.engine", "lode.config", "rich.console", "fastapi", "torch")


def _imported_modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lode", *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_help_and_version_import_nothing_heavy() -> None:
    for args in (["--help"], ["--version"]):
        modules = _imported_modules(*args)
        assert "typer" in modules  # the measurement works
        assert not {m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY}, args
    code, stdout, _ = run_cli("--version")
    assert code == 0 and re.fullmatch(r"lode \d+\.\d+\.\d+\n", stdout)
    code, stdout, _ = run_cli("-h")
    assert code == 0 and "Usage: lode" in stdout and "--install-completion" in stdout
    code, stdout, _ = run_cli("search", "-h")
    assert code == 0 and "--vimgrep" in stdout


# The command tree as JSON: every command with its parameters and its `-h` page. Typer 0.22+ vendors its own click
# (typer._click), so the walk goes by attributes: an isinstance test against the click package matches nothing.
COMMAND_TREE = """
import json, typing, typer
from typer.testing import CliRunner
from lode.cli import app

def walk(command, path):
    hints = typing.get_type_hints(command.callback) if command.callback else {}
    params = [{"opts": p.opts, "kind": p.param_type_name, "help": p.help or "", "bool": hints.get(p.name) is bool,
               "flag": bool(getattr(p, "is_flag", False))} for p in command.params]
    page = CliRunner().invoke(app, [*path, "-h"])
    yield {"path": " ".join(path), "help": command.help or "", "params": params, "page": page.output,
           "code": page.exit_code}
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, [*path, name])

print(json.dumps(list(walk(typer.main.get_command(app), []))))
"""


def test_flags_are_shown_as_flags_and_every_option_has_help() -> None:
    code, stdout, _ = run_cli("index", "-h")
    assert code == 0 and re.search(r"^\s+--wait\s+Return when", stdout, re.M) and "<bool>" not in stdout
    code, stdout, _ = run_cli("graph", "export", "-h")
    assert re.search(r"--include-external\s+Keep edges", stdout)

    proc = subprocess.run([sys.executable, "-c", COMMAND_TREE], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    commands = {command["path"]: command for command in json.loads(proc.stdout)}
    options = {(path, opt) for path, command in commands.items() for param in command["params"]
               for opt in param["opts"]}
    # the walk reached every level (it once matched nothing and passed)
    assert len(commands) >= 30 and {("symbols", "--limit"), ("graph path", "--max-depth"), ("graph path", "target"),
                                    ("graph export", "--include-external"), ("repos rm", "name")} <= options
    undocumented, not_flags = [], []
    for path, command in commands.items():
        assert command["code"] == 0 and command["page"].startswith("Usage: lode"), (path, command["page"])
        if not command["help"]:
            undocumented.append(f"lode {path} (the command)")
        for param in command["params"]:
            if not param["help"].strip():
                undocumented.append(f"lode {path} {'/'.join(param['opts'])} ({param['kind']})")
            if param["bool"] and not (param["flag"] and all(
                    re.search(rf"(?:^\s+|, ){re.escape(opt)}(?:\s\s|,|$)", command["page"], re.M)
                    for opt in param["opts"])):
                not_flags.append(f"lode {path} {'/'.join(param['opts'])}")
        # a flag takes no value; a repeatable option shows the type of one value, not `<list[str]>`
        # (and a ranged number `<int>`, its range in the brackets after the help)
        assert not re.search(r"<bool>|BOOLEAN|list\[|<int range>", command["page"]), (path, command["page"])
    assert undocumented == [], "options, arguments or commands without help"
    assert not_flags == [], "boolean options not shown as plain flags"


def test_shell_completion_completes_commands() -> None:
    # what the script `lode --install-completion` installs runs (the shell itself is detected from the process
    # tree, which a test runner does not have): completions for a partial word
    code, words, _ = run_cli(env={"_LODE_COMPLETE": "complete_bash", "COMP_WORDS": "lode gr", "COMP_CWORD": "1"})
    assert code == 0 and words.split() == ["graph"]
    code, words, _ = run_cli(env={"_LODE_COMPLETE": "complete_bash", "COMP_WORDS": "lode search x --mo",
                                  "COMP_CWORD": "3"})
    assert code == 0 and words.split() == ["--mode"]


def _tree(root: Path) -> None:
    write_tree(root, {
        "src/app/hooks.py": "def register_hook(name):\n    '''Register a hook by name.'''\n    return name\n\n\n"
                            "class HookRegistry:\n    def add_hook(self, hook):\n        return register_hook(hook)\n",
        "tests/test_hooks.py": "from app.hooks import register_hook\n\n\ndef test_register_hook():\n"
                               "    assert register_hook('x') == 'x'\n",
        "docs/hooks.md": "# Hooks\n\nCall register_hook to add a hook.\n",
    })


def test_output_formats_for_tools(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    _tree(tmp_path)
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    query = ["search", "register hook", "--repo", repo_name, "--mode", "lexical"]
    _, document, _ = run_cli(*query, "--json")
    assert len(document["hits"]) >= 3

    code, stdout, _ = run_cli(*query, "--jsonl")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert code == 0 and lines == document["hits"]

    code, stdout, _ = run_cli(*query, "--vimgrep")
    assert code == 0 and len(stdout.splitlines()) == len(document["hits"])
    for line in stdout.splitlines():
        path, number, column, text = re.fullmatch(r"([^:]+):(\d+):(\d+): (.*)", line).groups()
        source_line = (tmp_path / path).read_text().splitlines()[int(number) - 1]
        assert source_line == text  # the line the editor jumps to is the line shown
        assert text[int(column) - 1:].lower().startswith(("register", "hook"))  # and the column is the match

    code, stdout, _ = run_cli(*query)
    top = document["hits"][0]
    assert code == 0 and stdout.startswith(f"{top['path']}:{top['start_line']} ")


def test_graph_stats_prints_text_unless_json(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    _tree(tmp_path)
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    code, text, _ = run_cli("graph", "stats", "--repo", repo_name)
    assert code == 0 and text.startswith("nodes: ") and "{" not in text
    # called by the definition in src/app/hooks.py and by the test importing it from `app.hooks` (src/ layout)
    assert re.search(r"^most called:\n\s+2\s+\S*register_hook \(src/app/hooks\.py:1\)$", text, re.M)
    code, document, _ = run_cli("graph", "stats", "--repo", repo_name, "--json")
    assert code == 0 and document["nodes"]["function"] >= 2


def test_filters_that_cannot_match_are_errors(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    _tree(tmp_path)
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    query = ["search", "register hook", "--repo", repo_name, "--mode", "lexical", "--json"]
    code, _, stderr = run_cli(*query, "--lang", "klingon")
    assert code == 2 and "unknown language 'klingon'" in stderr and "python" in stderr and "rust" in stderr
    paths = {run_cli(*query, "--lang", spelling)[1]["hits"][0]["path"] for spelling in ("python", "Python", "py")}
    assert paths == {"src/app/hooks.py"}
    code, _, stderr = run_cli(*query, "--kind", "funct")
    assert code == 2 and "unknown kind 'funct'" in stderr and "function" in stderr and "method" in stderr
    _, everything, _ = run_cli(*query)
    _, kept, _ = run_cli(*query, "--path", "!tests/**")
    assert any(h["path"].startswith("tests/") for h in everything["hits"])
    assert kept["hits"] and not any(h["path"].startswith("tests/") for h in kept["hits"])
    # an option out of its range is named as it was typed (graph path said `--depth`, an option it does not have)
    code, _, stderr = run_cli("graph", "path", "app.hooks.register_hook", "app.hooks.HookRegistry", "--repo",
                              repo_name, "--max-depth", "0")
    assert code == 2 and "'--max-depth'" in stderr and "--depth " not in stderr


def test_searching_an_empty_index_names_the_command(tmp_path: Path) -> None:
    env = {"LODE_HOME": str(tmp_path / "home")}
    code, stdout, stderr = run_cli("search", "anything", "--mode", "lexical", env=env)
    assert code == 0 and "nothing is indexed yet" in stderr and "lode index PATH" in stderr
    assert stdout.strip() == "no hits"


def test_a_closed_pipe_exits_0_quietly(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, {f"m{i}.py": "".join(f"def hook_{i}_{j}():\n    return 'hook'\n\n\n" for j in range(20))
                          for i in range(20)})
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    for output in ([], ["--jsonl"], ["--vimgrep"], ["--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "lode", "search", "hook", "--repo", repo_name, "--mode",
                                 "lexical", "-k", "200", *output], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=os.environ)
        assert proc.stdout.read(1)  # like `| head -c 1`: the reader goes after its first byte
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, (output, stderr)
        assert stderr == "", (output, stderr)


def test_search_goes_through_a_running_lode_serve_with_the_same_document(
        lode: Lode, tmp_path: Path, repo_name: str) -> None:
    _tree(tmp_path / "tree")
    assert run_cli("index", str(tmp_path / "tree"), "--repo", repo_name, "--json")[0] == 0
    query = ["search", "register hook", "--repo", repo_name, "--mode", "lexical", "--json"]
    _, local, _ = run_cli(*query)
    with lode_serve(tmp_path / "serve.log") as served:
        adverts = list((Path(os.environ["LODE_HOME"]) / "run").glob("serve-*.json"))
        assert [json.loads(a.read_text())["pid"] for a in adverts] == [served.process.pid]
        code, remote, _ = run_cli(*query)
        metrics = served.request("GET", "/metrics").body
        code_bad, _, stderr = run_cli(*query, "--lang", "klingon")  # a 4xx answer: the local path words the error
    assert code == 0 and remote == local
    assert re.search(r'lode_http_requests_total\{method="GET",route="/v1/search",status="200"\} 1\.0', metrics)
    assert code_bad == 2 and "unknown language 'klingon'" in stderr
    assert not adverts[0].exists()  # withdrawn at shutdown


def test_watch_reindexes_on_change_debounced(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, {"a.py": "def first():\n    return 1\n"})
    watcher = subprocess.Popen([sys.executable, "-m", "lode", "watch", str(tmp_path), "--repo", repo_name,
                                "--debounce", "300", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=os.environ)
    try:
        initial = json.loads(watcher.stdout.readline())
        assert initial["repo"] == repo_name and initial["files_indexed"] == 1
        (tmp_path / "b.py").write_text("def zanzibar_marker():\n    return 2\n")
        (tmp_path / "c.py").write_text("def zanzibar_other():\n    return 3\n")
        changed = json.loads(watcher.stdout.readline())
        assert changed["files_indexed"] == 2 and changed["files_unchanged"] == 1  # one run for the burst
        _, found, _ = run_cli("search", "zanzibar marker", "--repo", repo_name, "--mode", "lexical", "--json")
        assert found["hits"][0]["path"] == "b.py"
        (tmp_path / "b.py").unlink()
        assert json.loads(watcher.stdout.readline())["files_deleted"] == 1
    finally:
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=60) == 0, watcher.stderr.read()
    code, _, stderr = run_cli("watch", str(tmp_path / "missing"), "--repo", repo_name)
    assert code == 2 and "no such directory" in stderr  # refused before watching anything


def test_sigterm_leaves_the_embedded_server_s_list_of_users(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, {"a.py": "def first():\n    return 1\n"})
    watcher = subprocess.Popen([sys.executable, "-m", "lode", "watch", str(tmp_path), "--repo", repo_name, "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    assert json.loads(watcher.stdout.readline())["files_indexed"] == 1
    holders = Path(os.environ["LODE_HOME"]) / "pgdata" / ".handle_pids.json"
    assert watcher.pid in json.loads(holders.read_text())
    watcher.terminate()  # SIGTERM, as `kill` and `timeout` send
    assert watcher.wait(timeout=60) == 0  # for `lode watch`, like Ctrl-C, how watching ends
    assert watcher.pid not in json.loads(holders.read_text())  # else the server would wait for a dead user

"""LODE_EDITOR_URL: the template of the web UI's "Open in editor" links (lode/web/editor.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lode.config import ServerSettings
from lode.web.editor import editor_link


def test_the_default_opens_vs_code_at_the_line() -> None:
    template = ServerSettings().editor_url
    # vscode://file//home/... (two slashes) fails in VS Code: the absolute path brings its own
    assert editor_link(template, "/home/me/my project/a#b.py", 12) == "vscode://file/home/me/my%20project/a%23b.py:12:1"
    assert editor_link("idea://open?file={path}&line={line}", "/src/x.py", 3, 7) == "idea://open?file=/src/x.py&line=3"


@pytest.mark.parametrize(("template", "complaint"), [
    ("javascript:alert(document.cookie)//{path}", "needs an editor's URL scheme"),
    ("data:text/html,{path}", "needs an editor's URL scheme"),
    ("{path}:{line}", "needs an editor's URL scheme"),
    ("vscode://file{path}:{lines}", "unknown placeholder {lines}"),
    ("vscode://file{path!r}", "{path} takes no format spec or conversion"),
    ("vscode://file{path:>9}", "{path} takes no format spec or conversion"),
    ("vscode://file{0}", "unknown placeholder {0}"),
    ("vscode://file/x.py:{line}", "has no {path}"),
    ("vscode://file{path", "is not a template"),
])
def test_a_template_that_is_not_an_editor_link_is_refused(template: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match="LODE_EDITOR_URL") as raised:
        ServerSettings(editor_url=template)
    assert complaint in str(raised.value)


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODE_EDITOR_URL", "cursor://file{path}:{line}:{column}")
    assert ServerSettings().editor_url == "cursor://file{path}:{line}:{column}"

"""The search modes: one enum (lode/model.py) whose values are the contract's strings (ARCHITECTURE.md § 3)."""

from __future__ import annotations

import json

from lode.model import Mode


def test_the_modes_are_the_contracts_strings() -> None:
    assert [mode.value for mode in Mode] == ["hybrid", "lexical", "semantic"]
    assert Mode("lexical") is Mode.LEXICAL
    assert json.dumps({"mode": Mode.SEMANTIC}) == '{"mode": "semantic"}'  # a JSON document carries the string

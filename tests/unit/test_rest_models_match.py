"""The REST documents (lode/api/models.py) declare the fields of the results the engine builds from the typed
records (lode/model.py, lode/store): a field added to or renamed in a record must show in /openapi.json too.

The models are written out rather than derived from the records because they carry what the records do not
(descriptions, examples, the narrower types of the JSON: Legs for a hit's legs dict) and because /openapi.json
must stay as it is; this test keeps the two declarations from drifting apart instead."""

from __future__ import annotations

import dataclasses

import pytest

from lode.api import models
from lode.embedding.backfill import BackfillProgress
from lode.model import Hit
from lode.store.symbols import OutlineEntry, SymbolMatch

# (record, REST model, record fields the JSON leaves out, model fields the record has not: each with its reason)
PAIRS = [
    (Hit, models.SearchHit,
     {"chunk_id": "internal: lode/services/search.py's _hit_json drops it"},
     {"callers": "added by expand=true (SearchService._expand)",
      "callees": "added by expand=true (SearchService._expand)"}),
    (SymbolMatch, models.SymbolOut, {}, {}),
    (OutlineEntry, models.OutlineSymbol, {}, {}),
    (BackfillProgress, models.Embeddings, {}, {}),
]


@pytest.mark.parametrize(("record", "model", "left_out", "added"), PAIRS, ids=lambda p: getattr(p, "__name__", ""))
def test_a_rest_model_declares_its_records_fields(record: type, model: type, left_out: dict[str, str],
                                                   added: dict[str, str]) -> None:
    record_fields = [f.name for f in dataclasses.fields(record) if f.name not in left_out]
    model_fields = [name for name in model.model_fields if name not in added]
    assert record_fields == model_fields
    assert set(left_out) <= {f.name for f in dataclasses.fields(record)}, "a left-out field no longer exists"
    assert set(added) <= set(model.model_fields), "an added field is no longer declared"

"""Schemathesis drives every operation of the in-process app's OpenAPI with generated input, valid and invalid:
no 5xx, and every response matches its declared status, content type and schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from starlette.types import ASGIApp, Receive, Scope, Send

from lode.api.app import create_app
from lode.config import Settings
from lode.engine import Lode
from tests.support.api_server import SHOP, api, index_via_api, settings_for
from tests.support.trees import write_tree

MAX_EXAMPLES = 15  # per operation and mode: the run stays around a minute on the 2-core machine
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def served(lode: Lode, lode_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The app's settings, with a repository indexed: answers with hits to validate."""
    roots = tmp_path_factory.mktemp("schema-roots")
    write_tree(roots / "shop", SHOP)
    config = settings_for(lode_home, allowed_roots=[roots])
    with api(lode_home, allowed_roots=[roots]) as client:
        index_via_api(client, roots / "shop", "schema-shop")
    return config


def _operations() -> list[tuple[str, str]]:
    """(path, method) of every operation, read from the app's schema at collection (no database needed)."""
    paths = create_app(Settings(embedder="none")).openapi()["paths"]
    return [(path, method) for path, methods in paths.items() for method in methods]


def on_loopback(app: ASGIApp) -> ASGIApp:
    """The app as a caller on its own loopback reaches it: schemathesis' ASGI client says it is "testclient"
    calling "testserver", a caller that is not on loopback and a Host the server does not answer to."""
    async def as_local(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", b"127.0.0.1")]
            scope = {**scope, "client": ("127.0.0.1", 50000), "headers": headers}
        await app(scope, receive, send)

    return as_local


@pytest.mark.parametrize(("path", "method"), _operations())
def test_every_operation_conforms(served: Settings, path: str, method: str) -> None:
    # a fresh app per test: schemathesis ends the app's lifespan after each test, and a lifespan runs once
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", on_loopback(create_app(served)))

    operation = api_schema[path][method.upper()]

    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    conforms()


# ---- the schema documents itself (issue 19 § 4) --------------------------------------------------------------

NEVER_ON_PROBES = {"401", "404", "409", "422", "429"}


def test_every_operation_and_parameter_is_documented_with_examples_and_its_own_errors() -> None:
    schema = create_app(Settings(embedder="none")).openapi()
    missing: list[str] = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            missing += [f"{where}: {field}" for field in ("summary", "description") if not operation.get(field)]
            for parameter in operation.get("parameters", []):
                if not parameter.get("description"):
                    missing.append(f"{where} {parameter['name']}: description")
                if not (parameter.get("examples") or parameter["schema"].get("examples")):
                    missing.append(f"{where} {parameter['name']}: examples")
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                resolved = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
                if not resolved.get("examples"):
                    missing.append(f"{where}: request body examples")
            errors = {status: spec for status, spec in operation["responses"].items() if status[0] in "45"}
            for status, spec in errors.items():
                ref = spec["content"]["application/json"]["schema"].get("$ref", "")
                if path not in ("/readyz", "/health") and not ref.endswith("/ErrorOut"):
                    missing.append(f"{where} {status}: not the error document")
            if not operation.get("parameters") and "requestBody" not in operation and "422" in errors:
                missing.append(f"{where}: 422 without any input")
    assert missing == []

    responses = {f"{m.upper()} {p}": set(op["responses"]) for p, ms in schema["paths"].items() for m, op in ms.items()}
    assert not responses["GET /livez"] & (NEVER_ON_PROBES | {"403", "503"})
    assert not responses["GET /health"] & NEVER_ON_PROBES
    assert "404" not in responses["GET /v1/repositories"] and "409" not in responses["GET /v1/search"]
    assert {"404", "409"} <= responses["DELETE /v1/repositories/{name}"]
    assert "403" in responses["POST /v1/cache/flush"] and "403" not in responses["GET /livez"]  # Origin: writes only
    assert "429" in responses["GET /v1/search"] and "429" not in responses["GET /metrics"]

    body = schema["components"]["schemas"]["ErrorBody"]["properties"]
    assert body["details"]["anyOf"][0]["items"]["$ref"].endswith("/ErrorDetail")
    assert set(schema["components"]["schemas"]["ErrorDetail"]["properties"]) == {"location", "message"}

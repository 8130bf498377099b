"""TypeScript and TSX: JavaScript's definitions plus types, namespaces and declarations."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Scope, Wrapper, wheel
from lode.languages.javascript import DEFINITIONS, ES_MODULES, FIELD_KINDS, TEST_PATHS, WRAPPERS


def _grammar(function: str) -> Grammar:
    return Grammar(
        load=wheel("tree_sitter_typescript", function),
        definitions={
            **DEFINITIONS,
            "abstract_class_declaration": Definition("class"),
            "interface_declaration": Definition("interface"),
            "type_alias_declaration": Definition("interface", body_field=None),
            "enum_declaration": Definition("enum"),
            "public_field_definition": Definition("method", value_field="value", value_kinds=FIELD_KINDS),
        },
        wrappers={
            **WRAPPERS,
            "expression_statement": Wrapper(None),  # holds `namespace X {}`
            "ambient_declaration": Wrapper(None),  # `declare ...`
        },
        scopes={"internal_module": Scope(), "module": Scope()},
        attachments=frozenset({"decorator"}),
    )


TYPESCRIPT = Language(
    name="typescript",
    extensions=(".ts", ".mts", ".cts"),
    aliases=("ts",),
    grammar=_grammar("language_typescript"),
    facts_reader="typescript",
    resolution=ES_MODULES,
    test_paths=TEST_PATHS,
)
TSX = Language(
    name="tsx",
    extensions=(".tsx",),
    grammar=_grammar("language_tsx"),
    facts_reader="typescript",
    resolution=ES_MODULES,
    test_paths=TEST_PATHS,
)

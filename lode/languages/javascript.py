"""JavaScript, and the definitions TypeScript builds on."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Resolution, Wrapper, wheel

_VALUE_KINDS = {
    "arrow_function": "function",
    "function_expression": "function",
    "function": "function",
    "generator_function": "function",
    "class": "class",
}
FIELD_KINDS = {"arrow_function": "method", "function_expression": "method", "class": "class"}
DEFINITIONS: dict[str, Definition] = {
    "function_declaration": Definition("function"),
    "generator_function_declaration": Definition("function"),
    "class_declaration": Definition("class"),
    "method_definition": Definition("function"),
    "variable_declarator": Definition("function", value_field="value", value_kinds=_VALUE_KINDS),
    "field_definition": Definition("method", name_field="property", value_field="value", value_kinds=FIELD_KINDS),
}
WRAPPERS: dict[str, Wrapper] = {
    "export_statement": Wrapper("declaration"),
    "lexical_declaration": Wrapper(None, in_signature=True),
    "variable_declaration": Wrapper(None, in_signature=True),
}
ES_MODULES = Resolution(by_scope=True, es_modules=True)
TEST_PATHS = (r"\.(test|spec)\.[^/]+$",)

JAVASCRIPT = Language(
    name="javascript",
    extensions=(".js", ".mjs", ".cjs", ".jsx"),
    aliases=("js", "jsx", "node"),
    grammar=Grammar(
        load=wheel("tree_sitter_javascript"),
        definitions=DEFINITIONS,
        wrappers=WRAPPERS,
        attachments=frozenset({"decorator"}),
    ),
    facts_reader="javascript",
    resolution=ES_MODULES,
    test_paths=TEST_PATHS,
)

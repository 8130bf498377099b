"""C, and the definitions C++ builds on: resolved by name."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Wrapper, wheel

DEFINITIONS: dict[str, Definition] = {
    "function_definition": Definition("function", name_field="declarator", requires_body=True),
    "struct_specifier": Definition("struct", requires_body=True),
    "union_specifier": Definition("struct", requires_body=True),
    "enum_specifier": Definition("enum", requires_body=True),
}
WRAPPERS: dict[str, Wrapper] = {
    "declaration": Wrapper("type"),  # `struct s {...} x;`
    "type_definition": Wrapper("type", name_field="declarator", in_signature=True),
}
PREPROCESSOR = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})
CALL_QUERY = "(call_expression function: _ @call)"
TEST_PATHS = (r"_tests?\.[^/.]+$",)

C = Language(
    name="c",
    extensions=(".c", ".h"),
    grammar=Grammar(load=wheel("tree_sitter_c"), definitions=DEFINITIONS, wrappers=WRAPPERS, member_lists=PREPROCESSOR),
    call_query=CALL_QUERY,
    test_paths=TEST_PATHS,
)

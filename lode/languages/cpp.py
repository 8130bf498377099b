"""C++: C plus classes, templates and namespaces; resolved by name."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Scope, Wrapper, wheel
from lode.languages.c import CALL_QUERY, DEFINITIONS, PREPROCESSOR, TEST_PATHS, WRAPPERS

CPP = Language(
    name="cpp",
    extensions=(".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
    aliases=("c++", "cxx", "cc"),
    grammar=Grammar(
        load=wheel("tree_sitter_cpp"),
        definitions={**DEFINITIONS, "class_specifier": Definition("class", requires_body=True)},
        wrappers={
            **WRAPPERS,
            "field_declaration": Wrapper("type"),  # a struct nested in a class
            "template_declaration": Wrapper(None),
        },
        scopes={
            "namespace_definition": Scope(replaces_module=True),
            "linkage_specification": Scope(name_field=None),
        },
        member_lists=PREPROCESSOR,
    ),
    call_query=CALL_QUERY,
    test_paths=TEST_PATHS,
)

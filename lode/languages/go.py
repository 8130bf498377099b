"""Go: a package is its folder."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Resolution, Wrapper, wheel

GO = Language(
    name="go",
    extensions=(".go",),
    aliases=("golang",),
    grammar=Grammar(
        load=wheel("tree_sitter_go"),
        definitions={
            "function_declaration": Definition("function", requires_body=True),
            "method_declaration": Definition("method", requires_body=True, receiver_field="receiver"),
            "type_spec": Definition(
                "struct",
                body_field=None,
                value_field="type",
                value_kinds={"struct_type": "struct", "interface_type": "interface"},
            ),
        },
        wrappers={"type_declaration": Wrapper(None, in_signature=True)},
        file_namespaces={"package_clause": None},
        member_lists=frozenset({"statement_list"}),
    ),
    facts_reader="go",
    resolution=Resolution(by_scope=True, names_in_package=True, package_is_folder=True, embedded_fields=True),
    test_paths=(r"_tests?\.[^/.]+$",),
)

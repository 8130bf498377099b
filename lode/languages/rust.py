"""Rust: resolved by name."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Scope, wheel

RUST = Language(
    name="rust",
    extensions=(".rs",),
    aliases=("rs",),
    grammar=Grammar(
        load=wheel("tree_sitter_rust"),
        definitions={
            "function_item": Definition("function", requires_body=True),
            "struct_item": Definition("struct"),
            "union_item": Definition("struct"),
            "enum_item": Definition("enum"),
            "trait_item": Definition("trait"),
        },
        scopes={"impl_item": Scope(name_field="type", names_type=True), "mod_item": Scope()},
        comments=frozenset({"line_comment", "block_comment"}),
        attachments=frozenset({"attribute_item"}),
    ),
    call_query="(call_expression function: _ @call)",
    test_paths=(r"_tests?\.[^/.]+$",),
)

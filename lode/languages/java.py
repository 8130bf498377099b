"""Java: packages, and overloads as nodes of their own."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Resolution, wheel

JAVA = Language(
    name="java",
    extensions=(".java",),
    grammar=Grammar(
        load=wheel("tree_sitter_java"),
        definitions={
            "class_declaration": Definition("class"),
            "record_declaration": Definition("class"),
            "interface_declaration": Definition("interface"),
            "annotation_type_declaration": Definition("interface"),
            "enum_declaration": Definition("enum"),
            "method_declaration": Definition("function", requires_body=True),
            "constructor_declaration": Definition("function", requires_body=True),
        },
        file_namespaces={"package_declaration": None},
        member_lists=frozenset({"enum_body_declarations"}),
        comments=frozenset({"line_comment", "block_comment"}),
    ),
    facts_reader="java",
    resolution=Resolution(by_scope=True, names_in_package=True, implicit_this=True, overloads=True),
    test_paths=(r"[a-z0-9]Tests?\.java$", r"(^|/)Tests?[A-Z][^/]*\.java$"),
)

"""C#: resolved by name."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Scope, wheel

CSHARP = Language(
    name="csharp",
    extensions=(".cs",),
    aliases=("c#", "cs"),
    grammar=Grammar(
        load=wheel("tree_sitter_c_sharp"),
        definitions={
            "class_declaration": Definition("class"),
            "record_declaration": Definition("class"),
            "struct_declaration": Definition("struct"),
            "interface_declaration": Definition("interface"),
            "enum_declaration": Definition("enum"),
            "method_declaration": Definition("function", requires_body=True),
            "constructor_declaration": Definition("function", requires_body=True),
            "destructor_declaration": Definition("function", requires_body=True),
        },
        scopes={"namespace_declaration": Scope(replaces_module=True)},
        file_namespaces={"file_scoped_namespace_declaration": "name"},
    ),
    call_query="""(invocation_expression function: _ @call)
                 (object_creation_expression type: _ @call)""",
    test_paths=(r"[a-z0-9]Tests?\.cs$", r"(^|/)Tests?[A-Z][^/]*\.cs$"),
)

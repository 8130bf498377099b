"""PHP: resolved by name."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Scope, wheel

PHP = Language(
    name="php",
    extensions=(".php",),
    grammar=Grammar(
        load=wheel("tree_sitter_php", "language_php"),
        definitions={
            "function_definition": Definition("function", requires_body=True),
            "method_declaration": Definition("function", requires_body=True),
            "class_declaration": Definition("class"),
            "interface_declaration": Definition("interface"),
            "trait_declaration": Definition("trait"),
            "enum_declaration": Definition("enum"),
        },
        scopes={"namespace_definition": Scope(replaces_module=True)},
        file_namespaces={"namespace_definition": "name"},  # `namespace App\Models;` without a block
    ),
    call_query="""(function_call_expression function: _ @call)
              (member_call_expression name: _ @call)
              (scoped_call_expression name: _ @call)
              (object_creation_expression (name) @call)""",
    test_paths=(r"[a-z0-9]Tests?\.php$",),
)

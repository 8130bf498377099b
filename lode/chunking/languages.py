"""The language table: file extensions, and for languages with a grammar, which tree-sitter nodes define what."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

CONTAINER_KINDS = frozenset({"class", "struct", "interface", "trait", "enum"})  # their members are chunked too


@dataclass(frozen=True, slots=True)
class Definition:
    """A node type that defines something named."""

    kind: str  # function | method | class | struct | interface | trait | enum; a function in a type becomes a method
    name_field: str = "name"
    body_field: str | None = "body"
    requires_body: bool = False  # without a body it is only a declaration (C prototype, abstract method)
    # When set, the kind comes from the type of this child and the body is looked up on that child:
    # JS `const f = () => {}` (value: arrow_function), Go `type T struct {...}` (type: struct_type).
    value_field: str | None = None
    value_kinds: Mapping[str, str] = field(default_factory=dict)
    receiver_field: str | None = None  # Go: the method belongs to its receiver's type


@dataclass(frozen=True, slots=True)
class Wrapper:
    """A node that wraps definitions and belongs to their chunk (decorators, `export`, `template <...>`)."""

    field: str | None  # the wrapped node; None: every named child that has no field name
    name_field: str | None = None  # names an anonymous definition: C `typedef struct {...} Name;`
    in_signature: bool = False  # the signature starts at the wrapper: `const f = () =>`, Go `type T struct`


@dataclass(frozen=True, slots=True)
class Scope:
    """A namespace-like block that names its definitions but is not a chunk itself (namespace, Rust impl)."""

    name_field: str | None = "name"  # None: anonymous, e.g. C++ `extern "C" { ... }`
    body_field: str = "body"
    names_type: bool = False  # named by a type, so its functions are methods: Rust `impl Trait for Foo`
    replaces_module: bool = False  # at top level, the namespace stands in for the module in name paths


@dataclass(frozen=True, slots=True)
class Grammar:
    load: Callable[[], object]  # returns the language capsule from the grammar wheel
    definitions: Mapping[str, Definition]
    wrappers: Mapping[str, Wrapper] = field(default_factory=dict)
    scopes: Mapping[str, Scope] = field(default_factory=dict)
    # A declaration naming the rest of the file (Java package) -> the field holding the name, None: first named child.
    file_namespaces: Mapping[str, str | None] = field(default_factory=dict)
    member_lists: frozenset[str] = frozenset()  # nodes inside a body whose children are its members or statements
    comments: frozenset[str] = frozenset({"comment"})
    attachments: frozenset[str] = frozenset()  # besides comments, leading siblings that belong to the next definition
    python_docstrings: bool = False  # docstring from the body's first string, not from the comment above
    python_guards: bool = False  # definitions under if/try/with statements are found, with their guard


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    extensions: tuple[str, ...]
    grammar: Grammar | None = None  # None: chunked by line windows


def _wheel(module: str, function: str = "language") -> Callable[[], object]:
    return lambda: getattr(importlib.import_module(module), function)()


_FUNCTION = Definition("function")
_FUNCTION_WITH_BODY = Definition("function", requires_body=True)

_PYTHON = Grammar(
    load=_wheel("tree_sitter_python"),
    definitions={"function_definition": _FUNCTION, "class_definition": Definition("class")},
    wrappers={"decorated_definition": Wrapper("definition")},
    python_docstrings=True,
    python_guards=True,
)

_JS_VALUE_KINDS = {
    "arrow_function": "function",
    "function_expression": "function",
    "function": "function",
    "generator_function": "function",
    "class": "class",
}
_JS_FIELD_KINDS = {"arrow_function": "method", "function_expression": "method", "class": "class"}
_JS_DEFINITIONS: dict[str, Definition] = {
    "function_declaration": _FUNCTION,
    "generator_function_declaration": _FUNCTION,
    "class_declaration": Definition("class"),
    "method_definition": _FUNCTION,
    "variable_declarator": Definition("function", value_field="value", value_kinds=_JS_VALUE_KINDS),
    "field_definition": Definition("method", name_field="property", value_field="value", value_kinds=_JS_FIELD_KINDS),
}
_JS_WRAPPERS: dict[str, Wrapper] = {
    "export_statement": Wrapper("declaration"),
    "lexical_declaration": Wrapper(None, in_signature=True),
    "variable_declaration": Wrapper(None, in_signature=True),
}
_JAVASCRIPT = Grammar(
    load=_wheel("tree_sitter_javascript"),
    definitions=_JS_DEFINITIONS,
    wrappers=_JS_WRAPPERS,
    attachments=frozenset({"decorator"}),
)


def _typescript(function: str) -> Grammar:
    return Grammar(
        load=_wheel("tree_sitter_typescript", function),
        definitions={
            **_JS_DEFINITIONS,
            "abstract_class_declaration": Definition("class"),
            "interface_declaration": Definition("interface"),
            "type_alias_declaration": Definition("interface", body_field=None),
            "enum_declaration": Definition("enum"),
            "public_field_definition": Definition("method", value_field="value", value_kinds=_JS_FIELD_KINDS),
        },
        wrappers={
            **_JS_WRAPPERS,
            "expression_statement": Wrapper(None),  # holds `namespace X {}`
            "ambient_declaration": Wrapper(None),  # `declare ...`
        },
        scopes={"internal_module": Scope(), "module": Scope()},
        attachments=frozenset({"decorator"}),
    )


_GO = Grammar(
    load=_wheel("tree_sitter_go"),
    definitions={
        "function_declaration": _FUNCTION_WITH_BODY,
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
)

_RUST = Grammar(
    load=_wheel("tree_sitter_rust"),
    definitions={
        "function_item": _FUNCTION_WITH_BODY,
        "struct_item": Definition("struct"),
        "union_item": Definition("struct"),
        "enum_item": Definition("enum"),
        "trait_item": Definition("trait"),
    },
    scopes={"impl_item": Scope(name_field="type", names_type=True), "mod_item": Scope()},
    comments=frozenset({"line_comment", "block_comment"}),
    attachments=frozenset({"attribute_item"}),
)

_JAVA_COMMENTS = frozenset({"line_comment", "block_comment"})
_JAVA = Grammar(
    load=_wheel("tree_sitter_java"),
    definitions={
        "class_declaration": Definition("class"),
        "record_declaration": Definition("class"),
        "interface_declaration": Definition("interface"),
        "annotation_type_declaration": Definition("interface"),
        "enum_declaration": Definition("enum"),
        "method_declaration": _FUNCTION_WITH_BODY,
        "constructor_declaration": _FUNCTION_WITH_BODY,
    },
    file_namespaces={"package_declaration": None},
    member_lists=frozenset({"enum_body_declarations"}),
    comments=_JAVA_COMMENTS,
)

_C_DEFINITIONS: dict[str, Definition] = {
    "function_definition": Definition("function", name_field="declarator", requires_body=True),
    "struct_specifier": Definition("struct", requires_body=True),
    "union_specifier": Definition("struct", requires_body=True),
    "enum_specifier": Definition("enum", requires_body=True),
}
_C_WRAPPERS: dict[str, Wrapper] = {
    "declaration": Wrapper("type"),  # `struct s {...} x;`
    "type_definition": Wrapper("type", name_field="declarator", in_signature=True),
}
_C_PREPROCESSOR = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"})
_C = Grammar(
    load=_wheel("tree_sitter_c"),
    definitions=_C_DEFINITIONS,
    wrappers=_C_WRAPPERS,
    member_lists=_C_PREPROCESSOR,
)
_CPP = Grammar(
    load=_wheel("tree_sitter_cpp"),
    definitions={**_C_DEFINITIONS, "class_specifier": Definition("class", requires_body=True)},
    wrappers={
        **_C_WRAPPERS,
        "field_declaration": Wrapper("type"),  # a struct nested in a class
        "template_declaration": Wrapper(None),
    },
    scopes={
        "namespace_definition": Scope(replaces_module=True),
        "linkage_specification": Scope(name_field=None),
    },
    member_lists=_C_PREPROCESSOR,
)

_RUBY = Grammar(
    load=_wheel("tree_sitter_ruby"),
    definitions={"method": _FUNCTION, "singleton_method": _FUNCTION, "class": Definition("class")},
    scopes={"module": Scope(replaces_module=True)},
)

_PHP = Grammar(
    load=_wheel("tree_sitter_php", "language_php"),
    definitions={
        "function_definition": _FUNCTION_WITH_BODY,
        "method_declaration": _FUNCTION_WITH_BODY,
        "class_declaration": Definition("class"),
        "interface_declaration": Definition("interface"),
        "trait_declaration": Definition("trait"),
        "enum_declaration": Definition("enum"),
    },
    scopes={"namespace_definition": Scope(replaces_module=True)},
    file_namespaces={"namespace_definition": "name"},  # `namespace App\Models;` without a block
)

_CSHARP = Grammar(
    load=_wheel("tree_sitter_c_sharp"),
    definitions={
        "class_declaration": Definition("class"),
        "record_declaration": Definition("class"),
        "struct_declaration": Definition("struct"),
        "interface_declaration": Definition("interface"),
        "enum_declaration": Definition("enum"),
        "method_declaration": _FUNCTION_WITH_BODY,
        "constructor_declaration": _FUNCTION_WITH_BODY,
        "destructor_declaration": _FUNCTION_WITH_BODY,
    },
    scopes={"namespace_declaration": Scope(replaces_module=True)},
    file_namespaces={"file_scoped_namespace_declaration": "name"},
)

LANGUAGES: Mapping[str, LanguageSpec] = MappingProxyType(
    {
        "python": LanguageSpec((".py", ".pyi"), _PYTHON),
        "javascript": LanguageSpec((".js", ".mjs", ".cjs", ".jsx"), _JAVASCRIPT),
        "typescript": LanguageSpec((".ts", ".mts", ".cts"), _typescript("language_typescript")),
        "tsx": LanguageSpec((".tsx",), _typescript("language_tsx")),
        "go": LanguageSpec((".go",), _GO),
        "rust": LanguageSpec((".rs",), _RUST),
        "java": LanguageSpec((".java",), _JAVA),
        "c": LanguageSpec((".c", ".h"), _C),
        "cpp": LanguageSpec((".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), _CPP),
        "ruby": LanguageSpec((".rb", ".rake", ".gemspec"), _RUBY),
        "php": LanguageSpec((".php",), _PHP),
        "csharp": LanguageSpec((".cs",), _CSHARP),
        # text only
        "markdown": LanguageSpec((".md", ".markdown", ".mdx")),
        "json": LanguageSpec((".json", ".jsonc", ".json5", ".jsonl", ".ipynb")),
        "yaml": LanguageSpec((".yaml", ".yml")),
        "toml": LanguageSpec((".toml",)),
        "ini": LanguageSpec((".ini", ".cfg", ".conf", ".properties")),
        "xml": LanguageSpec((".xml", ".xsd", ".xsl", ".svg", ".plist", ".csproj")),
        "shell": LanguageSpec((".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd")),
        "sql": LanguageSpec((".sql",)),
        "html": LanguageSpec((".html", ".htm", ".vue", ".svelte")),
        "css": LanguageSpec((".css", ".scss", ".sass", ".less")),
        "kotlin": LanguageSpec((".kt", ".kts")),
        "swift": LanguageSpec((".swift",)),
        "scala": LanguageSpec((".scala", ".sc")),
        "lua": LanguageSpec((".lua",)),
        "perl": LanguageSpec((".pl", ".pm")),
        "r": LanguageSpec((".r",)),
        "protobuf": LanguageSpec((".proto",)),
        "graphql": LanguageSpec((".graphql", ".gql")),
        "make": LanguageSpec((".mk", ".cmake")),
        "dockerfile": LanguageSpec((".dockerfile",)),
        "text": LanguageSpec((".txt", ".rst", ".adoc", ".csv", ".tsv", ".log")),
    }
)

_BY_EXTENSION: Mapping[str, str] = {ext: lang for lang, spec in LANGUAGES.items() for ext in spec.extensions}
_BY_FILENAME: Mapping[str, str] = {
    "Dockerfile": "dockerfile",
    "Makefile": "make",
    "GNUmakefile": "make",
    "CMakeLists.txt": "make",
    "Gemfile": "ruby",
    "Rakefile": "ruby",
}


def language_for_path(path: str) -> str | None:
    """The language id for a '/'-separated path, or None when neither its name nor its extension is known."""
    filename = path.rpartition("/")[2]
    if filename in _BY_FILENAME:
        return _BY_FILENAME[filename]
    stem, dot, extension = filename.rpartition(".")
    if not dot or not stem:
        return None
    return _BY_EXTENSION.get("." + extension.lower())


def grammar_for(language: str) -> Grammar | None:
    spec = LANGUAGES.get(language)
    return spec.grammar if spec else None

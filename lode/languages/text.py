"""Languages without a grammar: recognised by extension or file name, chunked by line windows."""

from __future__ import annotations

from lode.languages.base import Language

MARKDOWN = Language("markdown", (".md", ".markdown", ".mdx"), aliases=("md",))
JSON = Language("json", (".json", ".jsonc", ".json5", ".jsonl", ".ipynb"))
YAML = Language("yaml", (".yaml", ".yml"), aliases=("yml",))
TOML = Language("toml", (".toml",))
INI = Language("ini", (".ini", ".cfg", ".conf", ".properties"))
XML = Language("xml", (".xml", ".xsd", ".xsl", ".svg", ".plist", ".csproj"))
SHELL = Language("shell", (".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd"), aliases=("sh", "bash", "zsh"))
SQL = Language("sql", (".sql",))
HTML = Language("html", (".html", ".htm", ".vue", ".svelte"), aliases=("htm",))
CSS = Language("css", (".css", ".scss", ".sass", ".less"))
KOTLIN = Language("kotlin", (".kt", ".kts"), aliases=("kt",),
                  test_paths=(r"[a-z0-9]Tests?\.kt$", r"(^|/)Tests?[A-Z][^/]*\.kt$"))
SWIFT = Language("swift", (".swift",), test_paths=(r"[a-z0-9]Tests?\.swift$",))
SCALA = Language("scala", (".scala", ".sc"), test_paths=(r"[a-z0-9]Tests?\.scala$",))
LUA = Language("lua", (".lua",))
PERL = Language("perl", (".pl", ".pm"))
R = Language("r", (".r",))
PROTOBUF = Language("protobuf", (".proto",), aliases=("proto",))
GRAPHQL = Language("graphql", (".graphql", ".gql"))
MAKE = Language("make", (".mk", ".cmake"), filenames=("Makefile", "GNUmakefile", "CMakeLists.txt"),
                aliases=("makefile",))
DOCKERFILE = Language("dockerfile", (".dockerfile",), filenames=("Dockerfile",))
TEXT = Language("text", (".txt", ".rst", ".adoc", ".csv", ".tsv", ".log"), aliases=("txt",))

TEXT_LANGUAGES = (MARKDOWN, JSON, YAML, TOML, INI, XML, SHELL, SQL, HTML, CSS, KOTLIN, SWIFT, SCALA, LUA, PERL, R,
                  PROTOBUF, GRAPHQL, MAKE, DOCKERFILE, TEXT)

"""Ruby: resolved by name."""

from __future__ import annotations

from lode.languages.base import Definition, Grammar, Language, Scope, wheel

RUBY = Language(
    name="ruby",
    extensions=(".rb", ".rake", ".gemspec"),
    filenames=("Gemfile", "Rakefile"),
    aliases=("rb",),
    grammar=Grammar(
        load=wheel("tree_sitter_ruby"),
        definitions={
            "method": Definition("function"),
            "singleton_method": Definition("function"),
            "class": Definition("class"),
        },
        scopes={"module": Scope(replaces_module=True)},
    ),
    call_query="(call method: _ @call)",
    test_paths=(r"_spec\.rb$", r"(^|/)spec_helper\.rb$"),
)

"""One definitions fixture per grammar: kinds and name paths, with each language's naming rules."""

from __future__ import annotations

import textwrap

import pytest

from lode.chunking import chunk_file
from lode.config import Settings, Timeouts
from lode.languages import LANGUAGES

SETTINGS = Settings(
    chunk_max_lines=150, chunk_max_bytes=12_000, window_lines=60, window_overlap=10, timeouts=Timeouts(parse=5.0)
)

CASES: dict[str, tuple[str, str, set[tuple[str, str]]]] = {
    "python": (
        "pkg.mod",
        """
        class Greeter(Base):
            @staticmethod
            def hello(name):
                return name

        async def main():
            pass
        """,
        {("class", "pkg.mod.Greeter"), ("method", "pkg.mod.Greeter.hello"), ("function", "pkg.mod.main")},
    ),
    "javascript": (
        "src.app",
        """
        export function render() {}
        function* ids() {}
        const handler = async (event) => { return event; };
        var legacy = function () {};
        class Widget {
          onClick = () => {};
          static create() { return new Widget(); }
        }
        const Anon = class { run() {} };
        """,
        {
            ("function", "src.app.render"),
            ("function", "src.app.ids"),
            ("function", "src.app.handler"),
            ("function", "src.app.legacy"),
            ("class", "src.app.Widget"),
            ("method", "src.app.Widget.onClick"),
            ("method", "src.app.Widget.create"),
            ("class", "src.app.Anon"),
            ("method", "src.app.Anon.run"),
        },
    ),
    "typescript": (
        "src.types",
        """
        export interface Shape { area(): number; }
        export type Id = string | number;
        export enum Color { Red, Green }
        export abstract class Base {
          abstract name(): string;
          describe(): string { return this.name(); }
        }
        export const area = (s: Shape): number => s.area();
        """,
        {
            ("interface", "src.types.Shape"),
            ("interface", "src.types.Id"),
            ("enum", "src.types.Color"),
            ("class", "src.types.Base"),
            ("method", "src.types.Base.describe"),
            ("function", "src.types.area"),
        },
    ),
    "tsx": (
        "src.view",
        """
        export function App(props: Props) {
          return <div className="app">{props.title}</div>;
        }
        export const Item = ({ label }: { label: string }) => <li>{label}</li>;
        """,
        {("function", "src.view.App"), ("function", "src.view.Item")},
    ),
    "go": (
        "server.server",
        """
        package server

        type Server struct {
            addr string
        }

        type Handler interface {
            Serve() error
        }

        func (s *Server) Handle(x int) error {
            return nil
        }

        func (b Box[T]) Get() T { return b.v }

        func New() *Server { return nil }
        """,
        {
            ("struct", "server.Server"),
            ("interface", "server.Handler"),
            ("method", "server.Server.Handle"),
            ("method", "server.Box.Get"),
            ("function", "server.New"),
        },
    ),
    "rust": (
        "src.shapes",
        """
        pub struct Circle { r: f64 }
        pub enum Kind { Round }
        pub trait Area {
            fn area(&self) -> f64;
            fn double(&self) -> f64 { self.area() * 2.0 }
        }
        impl Circle {
            pub fn new(r: f64) -> Self { Circle { r } }
        }
        impl Area for Circle {
            fn area(&self) -> f64 { self.r * self.r }
        }
        mod tests {
            fn check() {}
        }
        """,
        {
            ("struct", "src.shapes.Circle"),
            ("enum", "src.shapes.Kind"),
            ("trait", "src.shapes.Area"),
            ("method", "src.shapes.Area.double"),
            ("method", "src.shapes.Circle.new"),
            ("method", "src.shapes.Circle.area"),
            ("function", "src.shapes.tests.check"),
        },
    ),
    "java": (
        "src.Main",
        """
        package org.demo.app;

        public interface Service { void run(); }

        enum Mode {
            FAST, SLOW;
            boolean quick() { return this == FAST; }
        }

        record Point(int x, int y) {
            int sum() { return x + y; }
        }

        class Main {
            Main() {}
            public static void main(String[] args) {}
        }
        """,
        {
            ("interface", "org.demo.app.Service"),
            ("enum", "org.demo.app.Mode"),
            ("method", "org.demo.app.Mode.quick"),
            ("class", "org.demo.app.Point"),
            ("method", "org.demo.app.Point.sum"),
            ("class", "org.demo.app.Main"),
            ("method", "org.demo.app.Main.Main"),
            ("method", "org.demo.app.Main.main"),
        },
    ),
    "c": (
        "lib.util",
        """
        #include <stdio.h>
        #ifndef UTIL_H
        static int add(int a, int b) { return a + b; }
        #endif
        struct point { int x; int y; };
        typedef struct { int w; } Size;
        enum color { RED, GREEN };
        char *name(void) { return "n"; }
        int prototype(int);
        """,
        {
            ("function", "lib.util.add"),
            ("struct", "lib.util.point"),
            ("struct", "lib.util.Size"),
            ("enum", "lib.util.color"),
            ("function", "lib.util.name"),
        },
    ),
    "cpp": (
        "src.shape",
        """
        class Shape {
         public:
          virtual ~Shape();
          double area() const { return 0; }
          struct Box { int w; };
        };

        double Shape::perimeter() const { return 1; }

        template <typename T> T twice(T x) { return x * 2; }

        namespace geo {
        class Point { int x() { return 0; } };
        }
        """,
        {
            ("class", "src.shape.Shape"),
            ("method", "src.shape.Shape.area"),
            ("struct", "src.shape.Shape.Box"),
            ("method", "src.shape.Shape.perimeter"),
            ("function", "src.shape.twice"),
            ("class", "geo.Point"),
            ("method", "geo.Point.x"),
        },
    ),
    "ruby": (
        "lib.shop",
        """
        module Shop
          class Cart < Base
            def add(item)
              @items << item
            end

            def self.empty
              new
            end
          end
        end

        def helper; end
        """,
        {
            ("class", "Shop.Cart"),
            ("method", "Shop.Cart.add"),
            ("method", "Shop.Cart.empty"),
            ("function", "lib.shop.helper"),
        },
    ),
    "php": (
        "src.User",
        """
        <?php
        namespace App\\Models;

        interface HasName { public function name(): string; }
        trait Greets { public function greet() { return "hi"; } }
        enum Suit { case Hearts; public function color() { return "red"; } }
        class User extends Model implements HasName {
            public function name(): string { return $this->name; }
        }
        function helper($x) { return $x; }
        """,
        {
            ("interface", "App.Models.HasName"),
            ("trait", "App.Models.Greets"),
            ("method", "App.Models.Greets.greet"),
            ("enum", "App.Models.Suit"),
            ("method", "App.Models.Suit.color"),
            ("class", "App.Models.User"),
            ("method", "App.Models.User.name"),
            ("function", "App.Models.helper"),
        },
    ),
    "csharp": (
        "src.Shapes",
        """
        namespace Geo.Shapes
        {
            public interface IShape { double Area(); }
            public struct Size { public int W; }
            public enum Kind { Round }
            public class Circle : IShape
            {
                public Circle(double r) { R = r; }
                public double Area() => R * R;
                class Cache { void Clear() {} }
            }
        }
        """,
        {
            ("interface", "Geo.Shapes.IShape"),
            ("struct", "Geo.Shapes.Size"),
            ("enum", "Geo.Shapes.Kind"),
            ("class", "Geo.Shapes.Circle"),
            ("method", "Geo.Shapes.Circle.Circle"),
            ("method", "Geo.Shapes.Circle.Area"),
            ("class", "Geo.Shapes.Circle.Cache"),
            ("method", "Geo.Shapes.Circle.Cache.Clear"),
        },
    ),
}


def test_every_grammar_has_a_case() -> None:
    assert set(CASES) == {language for language, spec in LANGUAGES.items() if spec.grammar is not None}


@pytest.mark.parametrize("language", sorted(CASES))
def test_definitions(language: str) -> None:
    module, source, expected = CASES[language]
    result = chunk_file(f"file.{language}", textwrap.dedent(source).lstrip(), language, module, SETTINGS)
    assert (result.language, result.fallback) == (language, None)
    found = {(c.kind, c.name_path) for c in result.chunks if c.kind not in ("module", "window")}
    assert found == expected
    for c in result.chunks:
        if c.name_path and c.kind != "module":
            assert c.name == c.name_path.rsplit(".", 1)[-1]
            assert c.signature


def test_csharp_file_scoped_namespace() -> None:
    source = "namespace Acme.Tools;\n\npublic class Hammer\n{\n    public void Hit() { }\n}\n"
    result = chunk_file("Hammer.cs", source, "csharp", "src.Hammer", SETTINGS)
    paths = {(c.kind, c.name_path) for c in result.chunks if c.kind != "module"}
    assert paths == {("class", "Acme.Tools.Hammer"), ("method", "Acme.Tools.Hammer.Hit")}


def test_cpp_out_of_line_definitions_inside_namespace_go_under_the_class() -> None:
    source = "namespace net {\nclass Socket { void open(); };\nvoid Socket::open() {}\n}\n"
    result = chunk_file("socket.cpp", source, "cpp", "src.socket", SETTINGS)
    paths = {(c.kind, c.name_path) for c in result.chunks if c.kind != "module"}
    assert paths == {("class", "net.Socket"), ("method", "net.Socket.open")}


def test_go_grouped_type_declaration_and_signatures() -> None:
    source = "package store\n\ntype (\n\tKey string\n\tEntry struct {\n\t\tk Key\n\t}\n)\n"
    result = chunk_file("store.go", source, "go", "store", SETTINGS)
    (entry,) = [c for c in result.chunks if c.kind == "struct"]
    assert (entry.name_path, entry.signature, entry.start_line, entry.end_line) == ("store.Entry", "Entry struct", 5, 7)

"""Bounded type flow (issue 18): parameter annotations into `self.x`, return annotations (`Self`, `return self`),
`with ... as` through `__enter__`, class attributes holding classes, annotated module globals, calls on call
results; what the flow does not know stays external, and confidence shows each step."""

from __future__ import annotations

import pytest
from tests.support.graph_repos import GraphRepo

from lode.engine import Lode
from lode.graph.facts import _python_items_type, _python_type
from lode.graph.resolve import CONSTRUCTOR_ARGUMENT, RETURNED, SELF_MEMBER, TYPED_RECEIVER

MODELS = (
    "from typing import Self\n"
    "class Prepared:\n"
    "    def send(self):\n"
    "        pass\n"
    "class Request:\n"
    "    def prepare(self) -> 'Prepared':\n"
    "        return Prepared()\n"
    "    def copy(self) -> Self:\n"
    "        pass\n"
    "    def fork(self):\n"
    "        return self\n"
    "    def close(self):\n"
    "        pass\n"
    "class Session:\n"
    "    def __enter__(self):\n"
    "        return self\n"
    "    def get(self):\n"
    "        pass\n"
    "class Response:\n"
    "    def json(self):\n"
    "        pass\n"
    "def make():\n"
    "    pass\n"
)
APP = (
    "from web.models import Request, Session, Response, make\n"  # 1
    "current: Request = make_proxy()\n"  # 2
    "class App:\n"  # 3
    "    response_class = Response\n"  # 4
    "    def __init__(self, request: Request, other):\n"  # 5
    "        self.request = request\n"  # 6
    "        self.other = other\n"  # 7
    "    def run(self):\n"  # 8
    "        self.request.close()\n"  # 9
    "        p = self.request.prepare()\n"  # 10
    "        p.send()\n"  # 11
    "        c = self.request.copy()\n"  # 12
    "        c.close()\n"  # 13
    "        self.request.fork().close()\n"  # 14
    "        with Session() as s:\n"  # 15
    "            s.get()\n"  # 16
    "        self.response_class().json()\n"  # 17
    "        current.close()\n"  # 18
    "        self.other.close()\n"  # 19
    "        m = make()\n"  # 20
    "        m.close()\n"  # 21
    "        with open('x') as f:\n"  # 22
    "            f.read()\n"  # 23
    "        r = t.cast(Request, self.other)\n"  # 24
    "        r.close()\n"  # 25
)


@pytest.fixture
def flow(lode: Lode, repo_name: str) -> GraphRepo:
    repo = GraphRepo(lode, repo_name)
    repo.apply({"web/__init__.py": "", "web/models.py": MODELS, "web/app.py": APP})
    return repo


def test_types_flow_through_attributes_returns_with_and_class_attributes(flow: GraphRepo) -> None:
    calls = {(target, int(evidence.rpartition(":")[2])): confidence
             for source, target, kind, evidence, confidence in flow.snapshot()
             if kind == "calls" and source == "web.app.App.run"}
    typed_self = SELF_MEMBER * TYPED_RECEIVER  # self.request: from the annotated parameter
    assert calls[("web.models.Request.close", 9)] == pytest.approx(typed_self)
    # p = self.request.prepare(): a local (TYPED_RECEIVER) holding what prepare returns (RETURNED), on an
    # attribute typed by the annotated parameter (TYPED_RECEIVER)
    local_of_returned = TYPED_RECEIVER * TYPED_RECEIVER * RETURNED
    assert calls[("web.models.Prepared.send", 11)] == pytest.approx(local_of_returned)
    assert calls[("web.models.Request.close", 13)] == pytest.approx(local_of_returned)  # `-> Self`
    assert calls[("web.models.Request.close", 14)] == pytest.approx(typed_self * RETURNED)  # `return self`
    assert calls[("web.models.Session.get", 16)] == pytest.approx(TYPED_RECEIVER * RETURNED)  # __enter__
    assert calls[("web.models.Response.json", 17)] == pytest.approx(SELF_MEMBER)  # an instance of the class
    assert ("web.models.Response", 17) in calls  # the class attribute holds the class: a constructor call
    assert calls[("web.models.Request.close", 18)] == pytest.approx(TYPED_RECEIVER)  # annotated module global
    assert calls[("web.models.Request.close", 25)] == pytest.approx(TYPED_RECEIVER)  # typing.cast
    # unknown stays external: an unannotated parameter, a function with no known return, a builtin's result
    externals = {target for target, _ in calls if target.startswith("external:")}
    assert {"external:self.other.close", "external:m.close"} <= externals
    assert not [target for target, line in calls if line in (19, 21, 23) and not target.startswith("external:")]


def test_a_subscripted_base_is_a_base(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply({"kinds.py": (
        "from typing import Generic, TypeVar\n"
        "T = TypeVar('T')\n"
        "class Param(Generic[T]):\n"
        "    def info(self):\n"
        "        pass\n"
        "class Date(Param[int]):\n"
        "    def info(self):\n"
        "        return {**super().info()}\n"
    )})
    edges = {(source, target, kind) for source, target, kind, _ in repo.edges()}
    assert ("kinds.Date", "kinds.Param", "inherits") in edges
    assert ("kinds.Date.info", "kinds.Param.info", "calls") in edges


def test_loop_variables_hold_the_elements_of_annotated_containers(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply({"cli.py": (
        "from typing import Iterator\n"  # 1
        "class Param:\n"  # 2
        "    def get_default(self):\n"  # 3
        "        pass\n"  # 4
        "class Group:\n"  # 5
        "    def get_command(self):\n"  # 6
        "        pass\n"  # 7
        "class Command:\n"  # 8
        "    def __init__(self):\n"  # 9
        "        self.sources: list[Group] = []\n"  # 10
        "    def get_params(self) -> list[Param]:\n"  # 11
        "        return []\n"  # 12
        "    def each(self) -> 'Iterator[Group]':\n"  # 13
        "        yield from self.sources\n"  # 14
        "    def run(self, extra: list[Param]):\n"  # 15
        "        for source in self.sources:\n"  # 16
        "            source.get_command()\n"  # 17
        "        for param in self.get_params():\n"  # 18
        "            param.get_default()\n"  # 19
        "        for p in extra:\n"  # 20
        "            p.get_default()\n"  # 21
        "        for g in self.each():\n"  # 22
        "            g.get_command()\n"  # 23
        "        for u in unknown():\n"  # 24
        "            u.get_command()\n"  # 25
    )})
    calls = {(target, int(evidence.rpartition(":")[2]))
             for source, target, kind, evidence in repo.edges(("calls",)) if source == "cli.Command.run"}
    assert {("cli.Group.get_command", 17), ("cli.Param.get_default", 19), ("cli.Param.get_default", 21),
            ("cli.Group.get_command", 23), ("external:u.get_command", 25)} <= calls
    assert not [target for target, line in calls if line == 25 and not target.startswith("external:")]


@pytest.mark.parametrize(("annotation", "instance", "items"), [
    ("Text", "Text", None), ('"Text"', "Text", None), ('Optional["Console"]', "Console", None),
    ("t.Optional[Console]", "Console", None), ("Console | None", "Console", None), ('List["Text"]', None, "Text"),
    ("cabc.Iterator[Group]", None, "Group"), ("tuple[T, ...]", None, "T"), ("Dict[str, int]", None, None),
    ("Union[A, B]", "A|B", None), ("A | B | None", "A|B", None), ("Optional[Union[A, 'B']]", "A|B", None),
    ("Union[A, Dict[str, int]]", "A|?", None), ("type[Foo]", None, None), ("list[int] | None", None, None),
])
def test_annotations_give_an_instance_or_element_type_only_when_they_name_one(
    annotation: str, instance: str | None, items: str | None
) -> None:
    assert (_python_type(annotation), _python_items_type(annotation)) == (instance, items)


def test_constructor_arguments_type_attributes_set_from_untyped_parameters(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply({
        "shop/__init__.py": "",
        "shop/stores.py": (
            "class Disk:\n"
            "    def save(self):\n"
            "        pass\n"
            "class Memory:\n"
            "    def save(self):\n"
            "        pass\n"
            "    def flush(self):\n"
            "        pass\n"
            "def open_disk():\n"
            "    return Disk()\n"
            "def typed_disk() -> Disk:\n"
            "    return Disk()\n"
        ),
        "shop/cart.py": (
            "from shop.stores import Disk, Memory\n"  # 1
            "class Cart:\n"  # 2
            "    def __init__(self, store, *, log=None, cache=None, audit=None):\n"  # 3
            "        self.store = store\n"  # 4
            "        self.log = log\n"  # 5
            "        self.cache = cache\n"  # 6
            "        self.audit: Disk = audit\n"  # 7 (what the class says wins over what callers pass)
            "    def checkout(self):\n"  # 8
            "        self.store.save()\n"  # 9
            "        self.log.save()\n"  # 10
            "        self.cache.flush()\n"  # 11
            "        self.audit.save()\n"  # 12
            "    @classmethod\n"  # 13
            "    def fresh(cls):\n"  # 14
            "        return cls(Memory())\n"  # 15
        ),
        "shop/app.py": (
            "from shop.stores import Disk, Memory, open_disk, typed_disk\n"  # 1
            "from shop.cart import Cart\n"  # 2
            "def main(unknown):\n"  # 3
            "    Cart(Disk(), log=typed_disk(), audit=Memory())\n"  # 4
            "    disk = Disk()\n"  # 5
            "    Cart(disk, cache=unknown)\n"  # 6
            "    Cart(store=open_disk())\n"  # 7 (open_disk's return is unknown: adds nothing)
        ),
    })

    def checkout_calls() -> dict[tuple[str, int], float]:
        return {(target, int(evidence.rpartition(":")[2])): confidence
                for source, target, kind, evidence, confidence in repo.snapshot()
                if kind == "calls" and source == "shop.cart.Cart.checkout"}

    calls = checkout_calls()
    argument = SELF_MEMBER * CONSTRUCTOR_ARGUMENT
    # Disk (twice) and Memory (cls(...)) reach `store`: both kept, the confidence split between them
    assert calls[("shop.stores.Disk.save", 9)] == pytest.approx(argument / 2)
    assert calls[("shop.stores.Memory.save", 9)] == pytest.approx(argument / 2)
    # a keyword-only parameter, through what an annotated function returns
    assert calls[("shop.stores.Disk.save", 10)] == pytest.approx(argument * RETURNED)
    # only an unknown value was passed as cache: external, never a guess
    assert [target for target, line in calls if line == 11] == ["external:self.cache.flush"]
    assert [target for target, line in calls if line == 12] == ["shop.stores.Disk.save"]
    assert calls[("shop.stores.Disk.save", 12)] == pytest.approx(SELF_MEMBER * TYPED_RECEIVER)
    # a constructor call elsewhere changes: the class's file is resolved again
    repo.apply({"shop/app.py": "from shop.stores import Memory\nfrom shop.cart import Cart\nCart(cache=Memory())\n"})
    calls = checkout_calls()
    assert calls[("shop.stores.Memory.save", 9)] == pytest.approx(argument)
    assert calls[("shop.stores.Memory.flush", 11)] == pytest.approx(argument)
    assert ("shop.stores.Disk.save", 9) not in calls


def test_calls_in_decorator_arguments_belong_to_the_enclosing_scope(lode: Lode, repo_name: str) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply({"cli.py": (
        "class CertType:\n"
        "    pass\n"
        "def option(kind):\n"
        "    return lambda f: f\n"
        "@option(kind=CertType())\n"
        "def main():\n"
        "    pass\n"
    )})
    calls = {(source, target) for source, target, kind, _ in repo.edges(("calls",))}
    assert ("cli", "cli.CertType") in calls and ("cli", "cli.option") in calls
    assert not [target for source, target in calls if source == "cli.main"]


def test_a_union_annotation_keeps_each_member_and_an_unknown_member_lowers_the_confidence(
    lode: Lode, repo_name: str
) -> None:
    repo = GraphRepo(lode, repo_name)
    repo.apply({"frames.py": (
        "from typing import Union\n"  # 1
        "class Debug:\n"  # 2
        "    def eval(self):\n"  # 3
        "        pass\n"  # 4
        "class Console:\n"  # 5
        "    def eval(self):\n"  # 6
        "        pass\n"  # 7
        "def run(frame: Debug | Console, other: Union[str, Console], path: str | bytes):\n"  # 8
        "    frame.eval()\n"  # 9
        "    other.eval()\n"  # 10
        "    path.eval()\n"  # 11
    )})
    calls = {(target, int(evidence.rpartition(":")[2])): confidence
             for source, target, kind, evidence, confidence in repo.snapshot() if kind == "calls"}
    assert calls[("frames.Debug.eval", 9)] == pytest.approx(TYPED_RECEIVER / 2)
    assert calls[("frames.Console.eval", 9)] == pytest.approx(TYPED_RECEIVER / 2)
    assert calls[("frames.Console.eval", 10)] == pytest.approx(TYPED_RECEIVER / 2)  # str: outside the repository
    assert [target for target, line in calls if line == 11] == ["external:path.eval"]

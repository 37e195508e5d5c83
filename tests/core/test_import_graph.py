"""The modules of ``stepup`` import one another in one direction only.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a
circle hidden that way still ties the modules together (and is one refactor away from
an import error). Implicit imports of a parent package are not edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stepup

SRC = Path(stepup.__file__).parent
ROOT = "stepup"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of other ``stepup`` modules (``from m import name`` is an
    edge to ``m.name`` when that is a module, else to ``m``)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name
                    target = target.rpartition(".")[0]
                if target.split(".")[0] == ROOT and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules around it, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_finder_sees_a_circle_and_only_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_hidden_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "stepup" / "p"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
    )
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    modules = {
        ".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted(tmp_path.rglob("*.py"))
    }
    graph = import_graph(modules)
    assert graph["stepup.p.a"] == {"stepup.p.b"}
    assert graph["stepup.p.b"] == {"stepup.p.a"}
    assert find_cycle(graph) is not None


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The modules tied in a circle, group by group (strongly connected components)."""
    found: set[frozenset[str]] = set()
    for node in sorted(graph):
        if any(node in group for group in found):
            continue
        reach = _reachable(graph, node)
        group = frozenset(n for n in reach if node in _reachable(graph, n))
        if len(group) > 1:
            found.add(group)
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_circles_are_grouped() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}
    assert circles(graph) == {frozenset("ab"), frozenset("cd")}


GRAPH = import_graph(_modules())


def test_the_graph_is_read() -> None:
    app = "stepup.integrations.starlette.app"
    assert "stepup.integrations.starlette.pages" in GRAPH[app]
    assert "stepup.integrations.starlette.stepup" in GRAPH["stepup.integrations.starlette.pages"]


def test_no_import_circle_in_stepup() -> None:
    assert circles(GRAPH) == set()


def test_the_starlette_package_has_no_import_circle() -> None:
    starlette = "stepup.integrations.starlette"
    assert not [group for group in circles(GRAPH) if any(m.startswith(starlette) for m in group)]

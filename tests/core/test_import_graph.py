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


# Layering: within each integration package the arrows point one way, from routes and
# pages down to the framework's core object; the shared modules know no framework
# package; framework packages do not import one another (FastAPI builds on Starlette);
# and nothing outside the integrations and the demo imports a web framework.
INTEGRATIONS = "stepup.integrations"
# Bottom layer first. A module may import only modules of a lower layer of its own
# package (or the shared modules, or the core). Every module must be placed.
LAYERS: dict[str, list[set[str]]] = {
    "": [  # the shared, framework-free modules of stepup.integrations
        {"http", "marks", "stores", "setting_readers", "cache_control"},
        {"views", "pages", "resume", "bearer"},
        {"transaction", "tenant_endpoint", "passkey_endpoint"},
        {"__init__"},
    ],
    "flask": [
        {"_config", "_csrf", "_web", "_hooks"},
        {"_state", "bearer"},  # the per-request object
        {"_views"},  # the pages
        {"_devices", "_passkeys"},  # views built on the pages
        {"_extension"},  # the public extension wires routes to the blueprint
        {"__init__"},
    ],
    "django": [
        {"models", "signals", "passwords", "hooks", "_web", "_session", "migrations"},
        {"store"},
        {"conf"},
        {"services"},  # the core objects built from the settings
        {"_request", "bearer", "management"},  # management commands use the services
        {"_pages", "decorators", "mixins", "middleware"},  # guards and page rendering
        {"views", "checks", "__init__"},
        {"device_views", "passkey_views", "apps"},
        {"urls"},
    ],
    "starlette": [
        {"_util", "csrf", "providers"},
        {"stepup", "bearer"},  # StepupCore: configuration, hooks, the guard; no views
        {"pages", "middleware"},
        {"passkeys", "federated", "devices"},
        {"app"},  # Stepup: routes, mount, install
        {"__init__"},
    ],
}
# Modules named for a framework outside its package: FastAPI's bearer dependency.
FASTAPI = {f"{INTEGRATIONS}.fastapi", f"{INTEGRATIONS}._bearer_deps"}
WEB_FRAMEWORKS = {
    "flask", "flask_login", "flask_wtf", "werkzeug", "django", "asgiref", "starlette",
    "fastapi", "uvicorn", "starlette_csrf", "itsdangerous", "jinja2", "multipart",
}  # fmt: skip
# Where a framework may be imported: its integration, the demo (a Starlette app) and the
# testing helper that reads an app's routes (imports Django inside the Django branch).
FRAMEWORK_USERS = (f"{INTEGRATIONS}.", "stepup.demo", "stepup.cli.demo", "stepup.testing.coverage")
# Outside the integrations, what may use them: the demo (an app) and the testing helpers.
APPS = ("stepup.demo", "stepup.testing")


def _package_of(module: str) -> str | None:
    """The integration package ("" for the shared modules) a module belongs to."""
    if module in FASTAPI:
        return "fastapi"
    if not module.startswith(INTEGRATIONS):
        return None
    first = module.removeprefix(INTEGRATIONS).lstrip(".").split(".")[0]
    return first if first in LAYERS else ""


def _layer(module: str, package: str) -> int | None:
    """The layer of a module within its package (a subpackage's modules share its layer)."""
    base = f"{INTEGRATIONS}.{package}" if package else INTEGRATIONS
    local = module.removeprefix(base).lstrip(".") or "__init__"
    for index, layer in enumerate(LAYERS[package]):
        if local.split(".")[0] in layer:
            return index
    return None


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        package = _package_of(module)
        if package is None:
            if not module.startswith(APPS):  # the core and the adapters
                found += [f"{module} -> {t}" for t in sorted(targets) if t.startswith(INTEGRATIONS)]
            continue
        if package == "fastapi":
            found += [
                f"{module} -> {t}"
                for t in sorted(targets)
                if _package_of(t) not in {None, "", "starlette", "fastapi"}
            ]
            continue
        mine = _layer(module, package)
        if mine is None:
            found.append(f"{module} is in no layer of {package or 'the shared modules'}")
            continue
        for target in sorted(targets):
            theirs = _package_of(target)
            if theirs is None or (theirs == "" and package != ""):
                continue  # the core, or a shared module from a framework package
            if theirs != package:
                found.append(f"{module} -> {target} (another integration)")
            elif (layer := _layer(target, package)) is None or layer >= mine:
                found.append(f"{module} -> {target} (not a lower layer)")
    return found


def _third_party(path: Path) -> set[str]:
    """Top-level modules a file imports from outside stepup (anywhere in the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - {ROOT}


def test_the_layering_check_sees_an_upward_import() -> None:
    pages, core = f"{INTEGRATIONS}.starlette.pages", f"{INTEGRATIONS}.starlette.stepup"
    assert layering_violations({core: set(), pages: {core}}) == []
    assert layering_violations({core: {pages}, pages: set()}) == [
        f"{core} -> {pages} (not a lower layer)"
    ]
    flask_state = f"{INTEGRATIONS}.flask._state"
    assert layering_violations({flask_state: {core}}) == [
        f"{flask_state} -> {core} (another integration)"
    ]
    assert layering_violations({f"{INTEGRATIONS}.views": {flask_state}}) == [
        f"{INTEGRATIONS}.views -> {flask_state} (another integration)"
    ]
    assert layering_violations({"stepup.reauth": {f"{INTEGRATIONS}.http"}}) == [
        f"stepup.reauth -> {INTEGRATIONS}.http"
    ]
    assert layering_violations({f"{INTEGRATIONS}.starlette.new": set()}) == [
        f"{INTEGRATIONS}.starlette.new is in no layer of starlette"
    ]


def test_every_integration_package_is_layered_one_way() -> None:
    assert layering_violations(GRAPH) == []


def test_the_starlette_core_object_imports_no_views() -> None:
    core = f"{INTEGRATIONS}.starlette.stepup"
    views = {"pages", "passkeys", "federated", "devices", "middleware", "app"}
    assert not {f"{INTEGRATIONS}.starlette.{v}" for v in views} & GRAPH[core]
    for module in ("pages", "federated", "middleware"):
        assert core in _reachable(GRAPH, f"{INTEGRATIONS}.starlette.{module}")


def test_the_core_never_imports_a_web_framework() -> None:
    modules = _modules()
    offenders = {
        name: sorted(_third_party(path) & WEB_FRAMEWORKS)
        for name, path in modules.items()
        if not name.startswith(FRAMEWORK_USERS) and _third_party(path) & WEB_FRAMEWORKS
    }
    assert offenders == {}
    core = [name for name, path in modules.items() if path.parent == SRC]  # stepup/*.py
    assert "stepup.reauth" in core
    assert "stepup.verifier" in core
    assert not [m for m in core if m.startswith(FRAMEWORK_USERS)]

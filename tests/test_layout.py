"""The package's shape: one import path per name, no import cycles, modules of a readable size."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

LMEB = Path(__file__).resolve().parents[1] / "lmeb"
REPO = LMEB.parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in LMEB.rglob("*.py")}


@functools.cache
def trees() -> dict[str, ast.Module]:
    """Every lmeb module's syntax tree, parsed when a test first asks (not at collection, on every worker)."""
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _defined(tree: ast.Module) -> set[str]:
    """Names a module binds itself at top level (functions, classes, assignments), not those it imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node in tree.body:
            names.add(node.name)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        if isinstance(node, ast.If):  # TYPE_CHECKING or version branches
            names.update(n.name for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.ClassDef)))
    return names


def _lmeb_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lmeb" and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names if a.name.split(".")[0] == "lmeb")
    return out


def test_every_name_is_imported_from_the_module_that_defines_it() -> None:
    """No re-exports: ``from lmeb.x import n`` only where lmeb.x defines n (or n is its submodule). The public
    API's names on ``lmeb`` itself (``lmeb.evaluate``...) are the one exception."""
    defined = {name: _defined(tree) for name, tree in trees().items()}
    others = [p for folder in ("tests", "benchmarks", "scripts") for p in (REPO / folder).rglob("*.py")]
    sources = [*trees().items(), *((str(p), ast.parse(p.read_text(encoding="utf-8"))) for p in others)]
    wrong = []
    for where, tree in sources:
        for module, names in _lmeb_imports(tree):
            if module == "lmeb" or module not in defined:
                continue
            wrong += [f"{where}: from {module} import {n}" for n in names
                      if n not in defined[module] and f"{module}.{n}" not in MODULES]
    assert not wrong, "imported from a module that does not define it:\n" + "\n".join(wrong)


def _importers() -> dict[str, set[str]]:
    """Module -> the lmeb modules it imports (anywhere in it, function-level imports included)."""
    graph: dict[str, set[str]] = {}
    for name, tree in trees().items():
        targets = set()
        for module, names in _lmeb_imports(tree):
            targets.add(module)
            targets.update(f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES)
        graph[name] = {t for t in targets if t in MODULES and t != name and t != "lmeb"}
    return graph


def test_no_import_cycles() -> None:
    """The modules form a DAG, counting function-level imports too (a deferred import is still a cycle)."""
    graph = _importers()
    for pkg_init in [m for m in MODULES if MODULES[m].name == "__init__.py"]:
        graph[pkg_init] = set()  # package __init__ files import their submodules lazily, by name
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these modules: {long}"


def test_package_inits_hold_no_code() -> None:
    """A subpackage's ``__init__`` is its docstring and the lazy-submodule hook, so importing a module never
    drags in its siblings (the CLI package keeps its entry point)."""
    for name, tree in trees().items():
        if MODULES[name].name != "__init__.py" or name in ("lmeb", "lmeb.cli"):
            continue
        kinds = {type(node).__name__ for node in tree.body[1:]}
        assert kinds <= {"ImportFrom", "Assign"}, f"{MODULES[name]} holds code: {kinds}"


def test_models_layer_imports_no_layer_above_it() -> None:
    """``lmeb.models`` turns specs and objects into models; the engine, results, report and API use it, never
    the other way round (function-level imports counted): a models module importing them is a layering bug."""
    above = ("lmeb.embeddings", "lmeb.engine", "lmeb.results", "lmeb.report", "lmeb.api")
    wrong = [f"{name} imports {module}" for name, tree in trees().items() if name.startswith("lmeb.models")
             for module, _ in _lmeb_imports(tree) if module.startswith(above) and module.split(".")[1] in
             [a.split(".")[1] for a in above]]
    assert not wrong, "\n".join(wrong)


ENGINE_FUNCTION_LINES = 60  # the engine reads as named steps: no function is a page of code


def test_no_engine_function_over_60_lines() -> None:
    """Every function and method of ``lmeb/engine/`` (nested ones included) spans at most 60 lines,
    decorators and docstring included."""
    long = []
    for name, tree in trees().items():
        if not name.startswith("lmeb.engine."):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = node.end_lineno - first + 1
                if size > ENGINE_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {size} lines")
    assert any(name.startswith("lmeb.engine.runner") for name in trees())  # the walk saw the engine
    assert not long, long

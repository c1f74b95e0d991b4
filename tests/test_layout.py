"""The layout: a library that stands alone under an application, modules in layers without import
circles, and a public API whose constructors document every parameter."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import avalanche_hsf
from avalanche_hsf import models, plugins

PACKAGE = Path(avalanche_hsf.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, whether the import is inside a function) for every import of the project."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    in_function = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import x` imports the submodule x where one exists
            names = [f"{base}.{a.name}" if (PACKAGE.parent / f"{base}.{a.name}".replace(".", "/")).exists()
                     or (PACKAGE.parent / (f"{base}.{a.name}".replace(".", "/") + ".py")).exists() else base
                     for a in node.names]
        else:
            continue
        found += [(name, id(node) in in_function) for name in names if name.split(".")[0] == "avalanche_hsf"]
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): {name for name, _ in project_imports(path)} - {module_name(path)}
            for path in PACKAGE.rglob("*.py")}


def test_the_library_never_imports_the_application():
    for module, imported in import_graph().items():
        if not module.startswith("avalanche_hsf.lab"):
            assert not [m for m in imported if m.startswith("avalanche_hsf.lab")], module


def test_importing_the_library_loads_no_application_module():
    code = ("import sys, avalanche_hsf.plugins, avalanche_hsf.models; "
            "print([m for m in sys.modules if m.startswith('avalanche_hsf.lab')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_modules_form_layers_without_circles_or_hidden_imports():
    graph = import_graph()
    for path in PACKAGE.rglob("*.py"):
        hidden = [name for name, inside in project_imports(path) if inside]
        assert hidden == [], (module_name(path), hidden)

    # A module importing a package's submodule also runs the package's __init__: count it as an edge.
    def edges(module):
        for name in graph.get(module, ()):
            parts = name.split(".")
            yield from (".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in graph)

    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", " -> ".join(trail + [module])
        state[module] = "open"
        for target in edges(module):
            if target != module and not module.startswith(target + "."):  # a package's own __init__
                visit(target, trail + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])


PUBLIC = [getattr(plugins, name) for name in plugins.__all__] + [getattr(models, name) for name in models.__all__]


def test_public_api_imports_and_documents_every_parameter():
    from avalanche_hsf.models import HSFModel, piggyback  # noqa: F401
    from avalanche_hsf.plugins import FiniteLossGuard, HSFPlugin, MASPlugin, PiggybackPlugin  # noqa: F401

    for thing in PUBLIC:
        signature = inspect.signature(thing)
        doc = inspect.getdoc(thing) or ""
        for name in signature.parameters:  # **options too, as `:param options:`
            assert f":param {name}:" in doc, f"{thing.__name__} does not document {name}"

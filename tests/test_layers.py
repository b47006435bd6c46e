"""Imports go one way: plumbing, then data and models, then training, then tuning and
transfer, then what the student sees. A module may import from its own layer or any layer
listed before it, never from a later one (CONTRIBUTING.md, "Layers")."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tlcnn_helpers"

LAYERS = [
    {"errors", "settings", "files", "compat"},
    {"environment", "memory", "records", "synthetic", "archives"},
    {"data", "pipelines", "convolution", "pooling", "models", "learning"},
    {"training", "evaluation"},
    {"tuning", "search_state", "distributed", "transfer", "pretrained", "interpretation"},
    {"viz", "widgets"},
    {"notebook", "report", "exercises"},
    {"cli", "commands", "__main__"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def top_module(path: Path, package: Path = PACKAGE) -> str:
    """The package-level module a file belongs to (``exercises/nb01_x.py`` -> ``exercises``)."""
    relative = path.relative_to(package)
    return relative.parts[0].removesuffix(".py")


def package_imports(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a package module in ``path``, local ones included."""
    found = []
    depth = len(path.relative_to(package).parts) - 1  # 0 for a top-level module
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "tlcnn_helpers":
                    continue
                targets = parts[1:2] or [alias.name for alias in node.names]
            else:
                if node.level - 1 < depth:  # an import inside the same subpackage
                    continue
                targets = ((node.module or "").split(".")[:1] if node.module
                           else [alias.name for alias in node.names])
            found += [(node.lineno, t) for t in targets if t]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "tlcnn_helpers" and len(parts) > 1:
                    found.append((node.lineno, parts[1]))
    return found


def upward_imports(package: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == package:
            continue
        module = top_module(path, package)
        for line, target in package_imports(path, package):
            if target == module:
                continue
            if LAYER_OF[target] > LAYER_OF[module]:
                problems.append(f"{path.relative_to(package.parent)}:{line}: {module} (layer "
                                f"{LAYER_OF[module] + 1}) imports {target} (layer "
                                f"{LAYER_OF[target] + 1})")
    return problems


def test_every_module_has_a_layer():
    modules = {top_module(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert modules <= set(LAYER_OF), f"add {sorted(modules - set(LAYER_OF))} to LAYERS"
    assert not set(LAYER_OF) - modules - {"__main__"}, "LAYERS names modules that are gone"


def test_no_module_imports_from_a_later_layer():
    assert upward_imports() == []


def test_an_upward_import_is_caught(tmp_path):
    fake = tmp_path / "tlcnn_helpers"
    (fake / "exercises").mkdir(parents=True)
    (fake / "data.py").write_text("def f():\n    from .training import fit\n")
    (fake / "training.py").write_text("from .data import f\n")
    (fake / "exercises" / "nb01_x.py").write_text("from ..viz import show_images\nfrom . import register\n")
    problems = upward_imports(fake)
    assert len(problems) == 1 and "data (layer 3) imports training (layer 4)" in problems[0]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_is_over_750_lines(path):
    assert len(path.read_text().splitlines()) <= 750, f"{path.name}: split it by what it teaches"


def test_matplotlib_is_imported_only_by_viz_and_widgets():
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "matplotlib" for n in names):
                importers.add(top_module(path))
    assert importers <= {"viz", "widgets"}, importers

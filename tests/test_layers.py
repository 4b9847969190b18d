"""Import direction, checked on the source. The layers (ml < core < labeling < training < reports) and
the Django-free ML layer are import-linter contracts in pyproject.toml; these tests run them,
show that a breach is caught, and check what the contracts cannot say: no import circles
between modules, and task modules imported only by the task layer."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ml", "core", "labeling", "training", "reports", "vision_project")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd)})


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_breaks_the_layer_contract(tmp_path):
    """The same contracts over a small tree in which core imports labeling."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "labeling" / "models.py").write_text("import core.models\n")
    (tmp_path / "core" / "models.py").write_text("")
    (tmp_path / "core" / "jobs.py").write_text("from labeling import models\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)  # the same contracts
    result = lint_imports(tmp_path)
    assert result.returncode != 0 and "core.jobs -> labeling.models" in result.stdout, result.stdout


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circles_between_modules():
    """Imports inside functions count too: a lazy import that closes a circle only hides it."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_circle(tmp_path, monkeypatch):
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "__init__.py").write_text("")
    (tmp_path / "loop" / "a.py").write_text("def f():\n    from loop import b\n")
    (tmp_path / "loop" / "b.py").write_text("from loop import c\n")
    (tmp_path / "loop" / "c.py").write_text("from loop.a import f\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("loop", cache_dir=None)) == [["loop.a", "loop.b", "loop.c"]]


def test_only_the_task_layer_imports_task_modules():
    """Services, selectors and the rest enqueue by name (vision_project.enqueue); importing
    a tasks module from below would point an import upward."""
    offenders = []
    for app in ("core", "labeling", "training", "reports"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if path.name == "tasks.py" or "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            if any(isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "tasks"
                   or isinstance(node, ast.Import) and any(a.name.endswith(".tasks") for a in node.names)
                   for node in ast.walk(tree)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []

"""Import direction, checked on the source: the Django-free ML layer imports no Django and
nothing of the apps above it; task modules are imported only by the task layer."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            names.add("." * node.level + (node.module or ""))  # reaches above its own package
    return names


def test_the_ml_layer_imports_no_django_and_no_app():
    offenders = {}
    for path in sorted((ROOT / "ml").glob("*.py")):
        bad = {name for name in imported_modules(path)
               if name.split(".")[0] in ("django", "rest_framework", "celery", "labeling", "training",
                                         "vision_project")
               or name.startswith("..")}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_only_the_task_layer_imports_task_modules():
    """Services, selectors and the rest enqueue by name (vision_project.enqueue); importing
    a tasks module from below would point an import upward."""
    offenders = []
    for app in ("labeling", "training"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if path.name == "tasks.py" or "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            if any(isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] == "tasks"
                   or isinstance(node, ast.Import) and any(a.name.endswith(".tasks") for a in node.names)
                   for node in ast.walk(tree)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# What labeling may still take from training until a core app holds the shared rows
# (docs/architecture.md): training's model rows and metrics, and the admin's training action.
LABELING_MAY_IMPORT = {"training.models", "ml.metrics", "training.services"}


def test_labeling_takes_nothing_else_from_training():
    offenders = {}
    for path in sorted((ROOT / "labeling").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        taken = {name for name in imported_modules(path) if name.split(".")[0] == "training"}
        allowed = LABELING_MAY_IMPORT if path.name == "admin.py" else LABELING_MAY_IMPORT - {"training.services"}
        if taken - allowed:
            offenders[str(path.relative_to(ROOT))] = sorted(taken - allowed)
    assert offenders == {}

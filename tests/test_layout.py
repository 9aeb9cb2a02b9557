"""The architecture the README describes holds: modules at the top level, the facade, the layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "complaint_triage"


def test_at_most_fourteen_modules_at_the_top_level():
    assert len(list(PACKAGE.glob("*.py"))) <= 14, sorted(path.name for path in PACKAGE.glob("*.py"))


def test_nothing_outside_store_touches_the_engine():
    """Everything outside store/ goes through the Store facade (testing/ is support, not the product)."""
    touching = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in {"store", "testing"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "engine":
                touching.append(f"{relative}:{node.lineno}")
    assert touching == []


def test_the_service_asks_sources_what_they_do_instead_of_what_they_are():
    tree = ast.parse((PACKAGE / "service.py").read_text(encoding="utf-8"))
    probes = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"getattr", "hasattr"}
    ]
    checks = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "isinstance"
        and ast.unparse(node.args[1]).endswith("Source")  # a source class, not an error class
    ]
    assert probes == [] and checks == []


def test_import_contracts_are_kept():
    """The layers of pyproject.toml's import-linter contracts (also run by .ci/run)."""
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(linter)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]

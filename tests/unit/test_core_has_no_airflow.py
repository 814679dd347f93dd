"""The core must stay importable and testable without Airflow."""

from __future__ import annotations

import ast
import pathlib

CORE = pathlib.Path(__file__).resolve().parents[2] / "include" / "erpsync"


def test_core_never_imports_airflow():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(CORE)}:{node.lineno} imports {n}" for n in names
                          if n == "airflow" or n.startswith("airflow.")]
    assert offenders == []
    assert len(list(CORE.rglob("*.py"))) > 3  # the scan actually saw the core

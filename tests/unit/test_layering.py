"""ktriage.core is pure: no Textual, no kubernetes client, no network server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ktriage.core

CORE = Path(ktriage.core.__file__).parent
FORBIDDEN = ("textual", "kubernetes", "aiohttp", "ktriage.ui", "ktriage.sources", "ktriage.sim")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_core_module_imports_ui_or_client() -> None:
    offenders = []
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 5
    for path in files:
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{path.relative_to(CORE.parent)} imports {name}")
    assert offenders == []


def test_importing_every_core_module_loads_neither_textual_nor_kubernetes() -> None:
    modules = [
        "ktriage.core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in sorted(CORE.rglob("*.py"))
        if p.name != "__init__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'kubernetes'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""ktriage.core is pure: no Textual, no kubernetes client, no network server.

The simulated cluster (ktriage.sim) stands apart from the product: it imports nothing
of it, the product imports it only where it runs it (the `demo` and `sim` commands,
the screenshot tool), and no sim module grows past what one reader can hold."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import ktriage.core
import ktriage.sim

CORE = Path(ktriage.core.__file__).parent
SIM = Path(ktriage.sim.__file__).parent
PACKAGE = SIM.parent
SIM_MAX_LINES = 800
# Product modules that may import the sim: they start or play it.
SIM_USERS = {"cli.py", "demo.py", "ui/screenshots.py"}
FORBIDDEN = ("textual", "kubernetes", "aiohttp", "ktriage.ui", "ktriage.sources", "ktriage.sim")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _absolute_imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module a file imports, relative imports resolved, `from P import m` as P.m."""
    package = [root.name, *path.relative_to(root).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _product_imports(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.startswith("ktriage.") and not n.startswith("ktriage.sim"))


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


def test_no_sim_module_imports_the_product() -> None:
    files = sorted(SIM.rglob("*.py"))
    assert len(files) > 20
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in _product_imports(_absolute_imports(path))
    ]
    assert offenders == []


def test_hostile_relative_and_from_package_imports_are_seen(tmp_path: Path) -> None:
    """The check above must not be fooled by the forms that hide a product import."""
    root = tmp_path / "ktriage"
    sneaky = root / "sim" / "scenario" / "steps" / "probe.py"
    sneaky.parent.mkdir(parents=True)
    sneaky.write_text(
        "from ... import format\nfrom ....core import model\nfrom ktriage import engine\n",
        encoding="utf-8",
    )
    found = _product_imports(_absolute_imports(sneaky, root))
    assert found == ["ktriage.core", "ktriage.core.model", "ktriage.engine"]


def test_the_product_imports_the_sim_only_where_it_runs_it() -> None:
    users = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if SIM not in path.parents
        and any(n == "ktriage.sim" or n.startswith("ktriage.sim.") for n in _absolute_imports(path))
    }
    assert users <= SIM_USERS, f"the sim is imported by {sorted(users - SIM_USERS)}"


def test_starting_the_cli_and_listing_scenarios_loads_no_player() -> None:
    code = (
        "import sys\n"
        "import ktriage.cli\n"
        "loaded_at_start = sorted(m for m in sys.modules if m.startswith('ktriage.sim'))\n"
        "names = ktriage.cli.scenario_names()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('ktriage.sim'))\n"
        "print(json.dumps([loaded_at_start, names, loaded]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True
    )
    loaded_at_start, names, loaded = json.loads(out.stdout)
    assert loaded_at_start == []
    # The names are read from the scenario files: no module of the sim is loaded.
    assert loaded == []
    from ktriage.sim.scenario.bundled import scenario_names

    assert names == scenario_names() and "cryptominer" in names


def test_help_loads_no_sim_and_no_core() -> None:
    """`ktriage --help` answers as fast as the interpreter starts: it loads neither the
    sim nor the core (whose secret patterns take a while to compile)."""
    code = (
        "import contextlib, io, json, sys\n"
        "import ktriage.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        ktriage.cli.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('ktriage.sim', 'ktriage.core')))\n"
        "print(json.dumps([loaded, out.getvalue()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, text = json.loads(out.stdout)
    assert loaded == []
    assert "demo" in text and "replay" in text


def test_no_sim_module_is_over_the_line_limit() -> None:
    too_long = {
        path.relative_to(PACKAGE).as_posix(): n
        for path in sorted(SIM.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > SIM_MAX_LINES
    }
    assert too_long == {}


def test_actions_and_sources_never_import_the_ui() -> None:
    """The UI imports the actions, never the reverse: no actions → ui → actions loop."""
    offenders = []
    for package in ("actions", "sources"):
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for name in _absolute_imports(path):
                if name == "ktriage.ui" or name.startswith("ktriage.ui."):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def test_actions_are_wired_directly_without_an_import_guard() -> None:
    """The actions are imported, not looked up: no `except ImportError` around them."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if SIM in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            guards_import = any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers
            )
            imports_own = any(
                isinstance(n, ast.ImportFrom) and (n.module or "").startswith("ktriage.actions")
                for stmt in node.body
                for n in ast.walk(stmt)
            )
            if guards_import and imports_own:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []

"""The shipped themes are one top-level folder, found installed and from a checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ktriage.ui.themes import SHIPPED_THEMES, shipped_theme_folder, shipped_themes

REPO = Path(__file__).resolve().parents[2]


def _toml_names(names: list[str]) -> set[str]:
    return {name[: -len(".toml")] for name in names if name.endswith(".toml")}


def test_shipped_themes_are_the_top_level_themes_folder():
    on_disk = _toml_names([p.name for p in (REPO / "themes").iterdir()])
    assert on_disk == set(SHIPPED_THEMES)
    # The installed package (editable here: mapped onto a checkout's themes/) lists the same.
    assert _toml_names([p.name for p in shipped_theme_folder().iterdir()]) == on_disk
    assert set(shipped_themes()) == on_disk
    # One copy only: no second folder inside the package to drift from it.
    assert not (REPO / "ktriage" / "themes").exists()


def test_checkout_run_without_installing_finds_the_themes_beside_the_package():
    # Drop the editable install's finder: this is a plain clone run as `python -m ...`.
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "from ktriage.ui.themes import shipped_theme_folder, shipped_themes\n"
        "print(shipped_theme_folder())\n"
        "print(' '.join(sorted(shipped_themes())))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    folder, names = done.stdout.splitlines()
    assert Path(folder) == REPO / "themes"
    assert set(names.split()) == set(SHIPPED_THEMES)

"""Themes are data: TOML files loaded into `textual.theme.Theme`.

The shipped themes are the top-level `themes/*.toml`, installed as the package
`ktriage.themes` (see setup.py); a user adds or
overrides themes with files in `$XDG_CONFIG_HOME/ktriage/themes/*.toml`. A broken
user theme is skipped with a reason, never a crash.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

DEFAULT_THEME = "ktriage-dark"
SHIPPED_THEMES = ("ktriage-dark", "ktriage-light", "ktriage-high-contrast")

# ktriage's own theme variables and the values used when a theme leaves them out
# (a built-in Textual theme picked from the palette, for instance).
VARIABLE_DEFAULTS: dict[str, str] = {
    "severity-critical": "#ff5c7a",
    "severity-high": "#ff9348",
    "severity-medium": "#e6c84c",
    "severity-low": "#6cb6ff",
    "severity-info": "#8b98a8",
    "ktriage-muted": "#8b98a8",
    "ktriage-signal-background": "#80808020",
    "ktriage-match-background": "#c0a00040",
    "ktriage-new": "#e0a84e",
}

_COLOR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "warning",
    "error",
    "success",
)
_OTHER_KEYS = {"name", "dark", "luminosity_spread", "text_alpha", "variables"}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message says why."""


@dataclass(slots=True)
class LoadedThemes:
    themes: dict[str, Theme] = field(default_factory=dict)
    # (file, reason) for every theme file that was skipped.
    problems: list[tuple[str, str]] = field(default_factory=list)


def user_theme_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ktriage" / "themes"


def _check_color(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{key} must be a colour string, not {type(value).__name__}")
    try:
        Color.parse(value.split()[0] if value.strip() else value)
    except ColorParseError as exc:
        raise ThemeFileError(f"{key}: {exc}") from exc
    return value


def theme_from_dict(data: dict[str, Any], default_name: str = "") -> Theme:
    """Build a Theme from the decoded TOML, checking every key and colour."""
    unknown = set(data) - set(_COLOR_KEYS) - _OTHER_KEYS
    if unknown:
        raise ThemeFileError(f"unknown key(s): {', '.join(sorted(unknown))}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError("the theme needs a name")
    if "primary" not in data:
        raise ThemeFileError("the theme needs a primary colour")
    colors = {k: _check_color(data[k], k) for k in _COLOR_KEYS if k in data}
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeFileError("[variables] must be a table")
    checked_vars = {}
    for key, value in variables.items():
        if not isinstance(value, str):
            raise ThemeFileError(f"variable {key} must be a string")
        checked_vars[str(key)] = value
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError("dark must be true or false")
    extra: dict[str, float] = {}
    for key in ("luminosity_spread", "text_alpha"):
        if key in data:
            value = data[key]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ThemeFileError(f"{key} must be a number")
            extra[key] = float(value)
    return Theme(name=name.strip(), dark=dark, variables=checked_vars, **colors, **extra)


def load_theme_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"not valid TOML: {exc}") from exc
    return theme_from_dict(data, default_name=path.stem)


def shipped_theme_folder() -> Traversable:
    """Where the shipped themes are: the installed `ktriage.themes` (wheel or editable
    install), else, in a source checkout run without installing, `themes/` beside
    the package."""
    try:
        return resources.files("ktriage.themes")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "themes"


def shipped_themes() -> dict[str, Theme]:
    """The themes shipped with ktriage."""
    out: dict[str, Theme] = {}
    folder = shipped_theme_folder()
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            theme = theme_from_dict(data, default_name=entry.name[:-5])
            out[theme.name] = theme
    return out


def load_themes(user_dir: Path | None = None) -> LoadedThemes:
    """Shipped themes, then user themes (which may replace a shipped one)."""
    loaded = LoadedThemes(themes=shipped_themes())
    folder = user_dir if user_dir is not None else user_theme_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as exc:
                loaded.problems.append((str(path), str(exc)))
                continue
            loaded.themes[theme.name] = theme
    return loaded

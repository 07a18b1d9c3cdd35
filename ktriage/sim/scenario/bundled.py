"""The scenarios that come with ktriage, by name: cheap to list (no player imported)."""

from __future__ import annotations

from importlib import resources

SCENARIO_PACKAGE = "ktriage.sim.scenarios"


def scenario_names() -> list[str]:
    """The bundled scenarios (files in `ktriage/sim/scenarios/` not starting with `_`)."""
    root = resources.files(SCENARIO_PACKAGE)
    return sorted(
        p.name[: -len(".yaml")]
        for p in root.iterdir()
        if p.name.endswith(".yaml") and not p.name.startswith("_")
    )

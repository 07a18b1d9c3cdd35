"""The `raw` step: one line written to an output exactly as the scenario gives it.

Hostile scenarios need records no well-behaved writer makes: nested thousands of
levels deep, over a megabyte, with times out of range or invisible characters. The
line is written as text (placeholders filled, then `fill` marks expanded), so
nothing here has to build or encode the hostile value itself. `@TIME@` and
`@TIME_NS@` in the line are the step's time (RFC 3339, nanoseconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktriage.sim.scenario.context import StepFailed
from ktriage.sim.timefmt import rfc3339_micro

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer

# Bounds that keep a scenario file from asking the sim for unbounded memory.
MAX_NEST = 100_000
MAX_FILL_BYTES = 64 << 20
_DAEMONS = {
    "falco": ("falco", "falco", "falco"),
    "tetragon": ("kube-system", "tetragon", "export-stdout"),
}


def expand_fill(line: str, fill: dict[str, Any]) -> str:
    """Replace each mark in `line` by what its spec makes: `{nest: N}` is N nested JSON
    objects (`{"x":` ... `}`) around `1`; `{repeat: TEXT, times: N, sep: ","}` is TEXT
    N times, joined by `sep`."""
    for mark, spec in fill.items():
        if not isinstance(spec, dict):
            raise StepFailed(f"fill {mark!r}: expected a mapping, got {spec!r}")
        if "nest" in spec:
            depth = int(spec["nest"])
            if not 0 <= depth <= MAX_NEST:
                raise StepFailed(f"fill {mark!r}: nest must be 0..{MAX_NEST}")
            value = '{"x":' * depth + "1" + "}" * depth
        elif "repeat" in spec:
            text = str(spec["repeat"])
            times = int(spec.get("times", 1))
            sep = str(spec.get("sep", ""))
            if times < 0 or times * (len(text) + len(sep)) > MAX_FILL_BYTES:
                raise StepFailed(f"fill {mark!r}: over {MAX_FILL_BYTES} bytes")
            value = sep.join(f"{text}".replace("#", str(i)) for i in range(times))
        else:
            raise StepFailed(f"fill {mark!r}: give `nest` or `repeat`")
        line = line.replace(str(mark), value)
    return line


def raw(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    to = str(body["to"])
    outputs = {
        "audit": player.outputs.audit,
        "falco": player.outputs.falco,
        "tetragon": player.outputs.tetragon,
    }
    out = outputs.get(to)
    if out is None:
        raise StepFailed(f"raw: `to` must be one of {', '.join(outputs)}, got {to!r}")
    # The step's own time, as the writers it imitates print it.
    line = str(body["line"]).replace("@TIME@", rfc3339_micro(t))
    line = line.replace("@TIME_NS@", str(int(t * 1e9)))
    line = expand_fill(line, dict(body.get("fill") or {}))
    out.write_raw(line.encode("utf-8", "surrogateescape"))
    node = body.get("node")
    if to in _DAEMONS and node:
        namespace, app, container = _DAEMONS[to]
        pod = player.daemon_pod(namespace, app, str(node))
        if pod:
            player.store.append_log(namespace, pod, container, line, time=t)

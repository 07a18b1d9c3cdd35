"""Scenario files: the bundled ones load, bad ones fail with a message naming the step."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.bundled import scenario_names
from ktriage.sim.scenario.format import ACTIONS, ScenarioError, Step, load_scenario, parse_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.scenario.steps import STEP_HANDLERS
from ktriage.sim.scenario.steps.audit import _request_uri
from ktriage.sim.scenario.templates import parse_seconds
from ktriage.sim.storage.store import ClusterStore

MINIMAL_CLUSTER = """
cluster:
  - node: {name: worker-1}
  - namespace: shop
  - deployment: {namespace: shop, name: web, image: nginx:1.27}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(write(tmp_path, text)))
    return str(info.value)


def test_bundled_scenarios_are_listed() -> None:
    names = scenario_names()
    assert {"cryptominer", "token-theft", "quiet-day"} <= set(names)
    assert not [n for n in names if n.startswith("_")]


@pytest.mark.parametrize("name", scenario_names())
def test_every_bundled_scenario_loads(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.description
    assert 4 * 60 <= scenario.duration <= 10 * 60
    assert len(scenario.steps) >= 20
    times = [s.at for s in scenario.steps]
    assert times == sorted(times)
    assert max(times) <= scenario.duration
    assert all(step.action in ACTIONS for step in scenario.steps)
    # The cluster every scenario starts from: three nodes, Falco and Tetragon.
    keys = [next(iter(item)) for item in scenario.cluster]
    assert keys.count("node") == 3
    assert {"kube_system", "falco", "tetragon"} <= set(keys)


def test_a_path_loads_and_steps_are_sorted_stably(tmp_path: Path) -> None:
    text = (
        MINIMAL_CLUSTER
        + """
steps:
  - {at: 1m, pod_log: {pod: shop/web#0, line: second}}
  - {at: 30s, pod_log: {pod: shop/web#0, line: first}}
  - {at: 60, pod_log: {pod: shop/web#0, line: third}}
"""
    )
    scenario = load_scenario(str(write(tmp_path, text)))
    assert scenario.name == "s"
    assert [s.body["line"] for s in scenario.steps] == ["first", "second", "third"]
    assert scenario.duration == 60


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("- {at: 5, explode: {}}", ["step 1 (line", "unknown action 'explode'"]),
        ("- {pod_log: {pod: shop/web#0, line: x}}", ["step 1", "missing 'at'"]),
        ("- {at: soon, pod_log: {pod: shop/web#0, line: x}}", ["step 1", "not a duration"]),
        (
            "- {at: 1, pod_log: {pod: shop/web#0, line: x}, delete: {pod: shop/web#0}}",
            ["step 1", "exactly one action"],
        ),
        (
            "- {at: 1, pod_log: {pod: shop/web#0, line: x}}\n"
            "- {at: 2, pod_log: {pod: shop/web#0, line: x, colour: red}}",
            ["step 2 (line", "pod_log", "unknown key 'colour'"],
        ),
        ("- {at: 3, pod_log: {line: x}}", ["step 1", "missing required key 'pod'"]),
        ("- {at: 3, pod_log: {pod: shop/web#0}}", ["step 1", "either line or lines"]),
        (
            "- {at: 3, container_state: {pod: shop/web#0, state: exploded}}",
            ["container_state", "state must be one of"],
        ),
        (
            "- {at: 3, falco: {pod: shop/web#0, rule: My own rule}}",
            ["falco", "'My own rule'", "give output and priority"],
        ),
        (
            "- {at: 3, falco: {pod: shop/web#0, rule: x, output: y, priority: Loud}}",
            ["falco", "unknown Falco priority 'Loud'"],
        ),
        (
            "- {at: 3, tetragon: {type: teleport, pod: shop/web#0, binary: /bin/sh}}",
            ["tetragon", "type must be one of"],
        ),
        (
            "- {at: 3, tetragon: {type: connect, pod: shop/web#0, binary: /bin/sh}}",
            ["tetragon", "destination"],
        ),
        ("- {at: 3, audit: {user: bob, verb: get}}", ["audit", "give resource"]),
        (
            "- {at: 3, audit: {user: bob, verb: get, resource: pods, code: ok}}",
            ["audit", "code must be an HTTP status number"],
        ),
        (
            "- {at: 3, audit: {user: bob, verb: get, resource: pods, each: [{colour: 1}]}}",
            ["audit", "each[1]: unknown key 'colour'"],
        ),
        (
            "- {at: 3, create: {pod: {namespace: shop, name: p, image: x, colour: red}}}",
            ["step 1", "create", "pod: unknown field 'colour'"],
        ),
        ("- {at: 3, create: {pond: {}}}", ["step 1", "unknown object template 'pond'"]),
        ("- {at: 3, patch: {pod: shop/web#0, patch: 5}}", ["patch must be a mapping"]),
        ("- {at: 3, delete: {}}", ["delete", "pod: NS/NAME or kind/namespace/name"]),
    ],
)
def test_bad_steps_name_the_step_and_the_problem(
    tmp_path: Path, steps: str, expected: list[str]
) -> None:
    message = error_of(tmp_path, MINIMAL_CLUSTER + "steps:\n" + _indent(steps))
    assert message.startswith(str(tmp_path / "s.yaml") + ": ")
    for part in expected:
        assert part in message, (part, message)


def test_every_action_has_one_step_handler() -> None:
    assert set(STEP_HANDLERS) == set(ACTIONS)
    assert all(callable(handler) for handler in STEP_HANDLERS.values())


@pytest.mark.parametrize("action", ["build_cluster", "apply", "_fill", "__init__", "_do_create"])
def test_hostile_action_naming_player_internals_is_refused(tmp_path: Path, action: str) -> None:
    message = error_of(tmp_path, MINIMAL_CLUSTER + f"steps:\n  - {{at: 1, {action}: {{}}}}\n")
    assert f"unknown action {action!r}" in message


def test_hostile_step_made_by_hand_reaches_no_player_method(tmp_path: Path) -> None:
    """A Step that never went through the format names only table entries, never
    the player's own methods (which a `getattr` dispatch would have reached)."""
    scenario = parse_scenario(MINIMAL_CLUSTER)
    scenario.steps.append(Step(index=1, at=1.0, action="build_cluster", body={}))
    clock = ManualClock(start=1_800_000_000.0)
    outputs = SimOutputs(tmp_path)
    player = ScenarioPlayer(
        scenario,
        store=ClusterStore(clock),
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    with pytest.raises(KeyError, match="build_cluster"):
        player.play_all()
    assert player.steps_done == 0


def test_line_numbers_point_at_the_step(tmp_path: Path) -> None:
    text = MINIMAL_CLUSTER + "steps:\n  - {at: 1, pod_log: {pod: a/b, line: x}}\n  - {at: 2}\n"
    line = text.splitlines().index("  - {at: 2}") + 1
    assert f"step 2 (line {line})" in error_of(tmp_path, text)


def test_bad_cluster_items_name_the_item(tmp_path: Path) -> None:
    message = error_of(tmp_path, "cluster:\n  - node: {name: n1}\n  - deployment: {name: x}\n")
    assert "cluster item 2" in message
    assert "missing required field 'namespace'" in message
    message = error_of(tmp_path, "cluster:\n  - deployment: {namespace: a, name: b, image: c}\n")
    assert "no nodes" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2]", "a scenario is a mapping"),
        ("steps: {at: 1}", "steps must be a list"),
        ("colour: red", "unknown top-level key 'colour'"),
        ("seed: lots", "seed must be an integer"),
        ("steps: [\n  {at: 1,", "not valid YAML"),
        ("duration: 10s\nsteps:\n  - {at: 20, delete: {kind: Pod, name: x}}", "after the"),
    ],
)
def test_bad_documents(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_unknown_name_and_missing_file() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope' \(bundled: .*cryptominer"):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/dir/scenario.yaml")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScenarioError, match="not a UTF-8 text file"):
        load_scenario(str(path))


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="a scenario is a mapping"):
        parse_scenario("just text")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0), ("1m30s", 90.0), ("2h", 7200.0),
     ("500ms", 0.5), ("1d", 86400.0), (" 2m ", 120.0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "-3", -1, True, "1m-", None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_seconds(text)


def test_exec_uri_is_built_like_kubectl_and_the_server() -> None:
    uri = _request_uri(
        "create", "", "v1", "pods", "shop", "web-1", "exec", None,
        {"command": ["sh", "-c", "id && ls /"], "container": "web", "stdin": True, "tty": True},
    )  # fmt: skip
    assert uri == (
        "/api/v1/namespaces/shop/pods/web-1/exec?command=sh&command=-c"
        "&command=id+%26%26+ls+%2F&container=web&stdin=true&stdout=true&tty=true"
    )
    no_tty = _request_uri(
        "create", "", "v1", "pods", "shop", "web-1", "exec", None,
        {"command": ["ls"], "container": "web", "stdin": False, "tty": False},
    )  # fmt: skip
    assert no_tty.endswith("exec?command=ls&container=web&stderr=true&stdout=true")


@pytest.mark.parametrize(
    ("args", "uri"),
    [
        (("list", "", "v1", "secrets", None, None, None, None), "/api/v1/secrets?limit=500"),
        (
            ("get", "", "v1", "pods", "shop", "web-1", None, None),
            "/api/v1/namespaces/shop/pods/web-1",
        ),
        (
            ("create", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", None, "x",
             None, None),
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
            "?fieldManager=kubectl-create&fieldValidation=Strict",
        ),
        (
            ("create", "", "v1", "serviceaccounts", "kube-system", "ctl", "token", {}),
            "/api/v1/namespaces/kube-system/serviceaccounts/ctl/token",
        ),
        (
            ("watch", "apps", "v1", "deployments", "shop", None, None, None),
            "/apis/apps/v1/namespaces/shop/deployments?allowWatchBookmarks=true&watch=true",
        ),
        (
            ("update", "apps", "v1", "deployments", "shop", "web", "scale", None),
            "/apis/apps/v1/namespaces/shop/deployments/web/scale",
        ),
    ],
)  # fmt: skip
def test_request_uris(args: tuple, uri: str) -> None:
    assert _request_uri(*args, None) == uri


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())

from __future__ import annotations

from pathlib import Path

import pytest

from ktriage.core.config import ConfigError, load_config, parse_duration
from ktriage.core.model import Event, Severity, entity


def test_parse_duration() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    assert parse_duration(15) == 15
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_duration("soon")
    with pytest.raises(ValueError):
        parse_duration("5x")


def _exec_event(user: str, ns: str) -> Event:
    return Event(
        time=1.0,
        source="audit",
        ref="a",
        kind="exec",
        severity=Severity.MEDIUM,
        summary=f"{user} exec into {ns}/web",
        entities=(entity("User", "", user), entity("Pod", ns, "web"), entity("Namespace", "", ns)),
        signal=True,
        label="Exec into pod",
    )


def test_suppression_matches_all_given_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'window = "10m"\n'
        "[[suppress]]\n"
        'user = "sre-*"\nnamespace = "dev"\nrule = "exec"\nreason = "expected"\n'
    )
    cfg = load_config(path)
    assert cfg.window == 600
    assert cfg.suppression_for(_exec_event("sre-alice", "dev")) is not None
    assert cfg.suppression_for(_exec_event("sre-alice", "prod")) is None
    assert cfg.suppression_for(_exec_event("mallory", "dev")) is None


def test_missing_default_config_is_fine_but_explicit_one_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("window = [", "not valid TOML"),
        ('window = "soon"', "window"),
        ("[[suppress]]\nuser = 1\n", "must be a string"),
        ('[[suppress]]\nusr = "x"\n', "unknown key"),
        ('[[suppress]]\nreason = "x"\n', "matches nothing"),
    ],
)
def test_bad_config_gives_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_session_length_per_suppression(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[suppress]]\nuser = "sre-alice"\n'
        '[[suppress]]\nuser = "sre-bob"\nsession = "30m"\n'
        '[[suppress]]\nuser = "sre-carol"\nsession = "0s"\n'
        '[[suppress]]\nuser = "sre-dave"\nsession = 90\n'
    )
    cfg = load_config(path)
    assert [r.session for r in cfg.suppressions] == [900, 1800, 0, 90]
    path.write_text('[[suppress]]\nuser = "x"\nsession = "soon"\n')
    with pytest.raises(ConfigError, match="session"):
        load_config(path)


def test_namespace_rule_ignores_the_pod_whose_token_made_an_audit_request() -> None:
    from ktriage.core.config import Suppression

    rule = Suppression(namespace="ci")
    by_token = Event(
        time=1.0,
        source="audit",
        ref="b",
        kind="rbac-binding",
        severity=Severity.HIGH,
        summary="system:serviceaccount:ci:runner bound ClusterRole cluster-admin",
        entities=(
            entity("ServiceAccount", "ci", "runner"),
            entity("IP", "", "198.51.100.23"),
            entity("Pod", "ci", "runner-8c457c4d-d4kw5"),
        ),
        signal=True,
    )
    assert not rule.matches(by_token)
    runtime = Event(
        time=1.0,
        source="falco",
        ref="f",
        kind="shell",
        severity=Severity.LOW,
        summary="shell",
        entities=(entity("Pod", "ci", "runner-8c457c4d-d4kw5"),),
        signal=True,
    )
    assert rule.matches(runtime)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('windw = "5m"', "unknown setting"),
        ("window = 5", "in quotes"),
        ('window = "0s"', "between 1s and 7d"),
        ('window = "99999h"', "between 1s and 7d"),
    ],
)
def test_config_mistakes_are_not_silently_ignored(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[suppress]]\nusr = "x"\nuser = "y"\n',
            "suppress entry 1 in {path}: unknown key(s) usr; "
            "allowed: namespace, reason, rule, session, source, user",
        ),
        (
            "[allowlist]\nfiles = []\ncolour = 1\nzone = 2\n",
            "[allowlist] in {path}: unknown key(s) colour, zone; allowed: default, files",
        ),
    ],
)
def test_unknown_keys_are_named_with_what_is_allowed(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == message.format(path=path)

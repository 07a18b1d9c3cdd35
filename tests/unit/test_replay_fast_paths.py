"""The faster replay paths give what the plain ones give: incidents made once at the
end of a replay (`Correlator.deferred_incidents`) equal those made event by event,
and pass 1's remembered decisions hold when every line names something new."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from k8s_records import T0, audit, falco, pod_object, tetragon_exec
from test_correlate import (
    _clone,
    _sre_config,
    falco_shell,
    sre_exec,
    tetragon_miner,
    tetragon_ps,
    tetragon_shell,
)
from test_focus import _assert_same

from ktriage.core import focus
from ktriage.core.config import Config
from ktriage.core.correlate import Correlator
from ktriage.core.detect.audit import SIGNAL_REQUESTS
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event
from ktriage.core.parse.audit import DECODER as AUDIT_DECODER


def _incidents(c: Correlator) -> list[tuple[object, ...]]:
    """Everything a report or a view shows of each incident."""
    return sorted(
        (
            i.id,
            i.severity,
            i.title,
            i.first_seen,
            i.last_seen,
            i.first_signal,
            i.tactics,
            i.entities,
            tuple(i.timeline),
            i.signal_count,
            tuple(sorted(i.counts_by_source.items())),
            tuple(e.ref for e in c.events_of(i.id)),
        )
        for i in c.incidents.values()
    )


def _both(events: list[Event], config: Config) -> tuple[Correlator, Correlator]:
    eager = Correlator(config=config)
    for ev in events:
        eager.add(_clone(ev))
    deferred = Correlator(config=config)
    with deferred.deferred_incidents():
        for ev in events:
            deferred.add(_clone(ev))
        assert not deferred.incidents  # made at the end, not before
    return eager, deferred


def _events_of(lines: list[bytes]) -> list[Event]:
    ingestor = Ingestor()
    events = [ev for line in lines for ev in ingestor.feed_line(line)]
    return events + ingestor.flush()


def _linking_lines() -> list[bytes]:
    """Roll-ups of a noisy low rule, a shell that takes a pod out of one, a pod's
    address learnt from its status and a stolen token used from it."""
    rule = "Kubernetes Client Tool Launched in Container"
    lines = [
        falco(
            T0 + i * 7,
            rule,
            "Notice",
            namespace="ci",
            pod=f"build-{i % 30:02d}",
            cmd="kubectl get pods",
        )
        for i in range(120)
    ]
    lines.append(
        falco(
            T0 + 300,
            "Terminal shell in container",
            "Warning",
            namespace="ci",
            pod="build-07",
            cmd="bash -i",
        )
    )
    status = {"status": {"podIP": "10.244.1.7", "hostIP": "10.0.0.5", "phase": "Running"}}
    lines.append(
        audit(
            T0 + 10,
            "system:node:node-a",
            "patch",
            "pods",
            namespace="shop",
            name="web-1",
            subresource="status",
            source_ip="10.0.0.5",
            request_object=status,
            response_object=pod_object(
                "shop", "web-1", account="web", pod_ip="10.244.1.7", host_ip="10.0.0.5"
            ),
        )
    )
    lines.append(
        falco(
            T0 + 60,
            "Terminal shell in container",
            "Warning",
            namespace="shop",
            pod="web-1",
            cmd="bash -i",
        )
    )
    lines.append(
        audit(
            T0 + 90,
            "system:serviceaccount:shop:web",
            "list",
            "secrets",
            namespace="shop",
            source_ip="10.244.1.7",
        )
    )
    return lines


@pytest.mark.parametrize("seed", range(8))
def test_deferred_incidents_equal_eager_ones_in_any_order(seed: int) -> None:
    events = _events_of(_linking_lines())
    random.Random(seed).shuffle(events)
    eager, deferred = _both(events, Config())
    assert _incidents(deferred) == _incidents(eager)
    assert len(eager.incidents) >= 3


@pytest.mark.parametrize("seed", range(8))
def test_deferred_incidents_equal_eager_ones_when_sessions_rebuild_them(seed: int) -> None:
    """A suppressed exec opens a session that turns runtime signals already filed
    into context: their incident is rebuilt (split, renamed or closed)."""
    events = [
        tetragon_shell(),
        falco_shell(),
        tetragon_ps(),
        tetragon_miner(),
        sre_exec(),
        tetragon_shell(T0 + 5_000.6),
        sre_exec(T0 + 5_000.0),
    ]
    random.Random(seed).shuffle(events)
    eager, deferred = _both(events, _sre_config(session=600.0))
    assert _incidents(deferred) == _incidents(eager)


def test_hostile_every_line_names_a_new_user_address_pod_and_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pass 1 remembers decisions by name and address, Tetragon names by pod and
    container, and the numbers of combinations of names: with every line new (and
    the memory kept tiny, so it is cleared again and again) a focused replay still
    gives exactly what a full one gives."""
    monkeypatch.setattr(focus, "_OUTSIDE_CACHE", 4)
    monkeypatch.setattr(focus, "_TETRAGON_KEYS_CACHE", 4)
    monkeypatch.setattr(focus, "_COMBO_CACHE", 4)
    rng = random.Random(9)
    lines: list[bytes] = []
    for i in range(600):
        t = T0 + i
        node = f"system:node:node-{i:04d}"
        # A node's credential from a public address may be a signal: it takes the full
        # path; from a private one it is left out.
        public = i % 50 == 7
        ip = f"203.0.113.{i % 250}" if public else f"10.{i % 250}.{i // 250}.1"
        lines.append(
            audit(
                t, node, "get", "configmaps", namespace="kube-system", name=f"cm-{i}", source_ip=ip
            )
        )
        # The same name and address again: answered from memory (or not, once cleared).
        lines.append(
            audit(t + 0.5, node, "get", "endpoints", namespace="kube-system", source_ip=ip)
        )
        lines.append(
            tetragon_exec(
                t + 0.2,
                "/usr/bin/python3",
                "-m worker",
                namespace=f"ns-{rng.randrange(40)}",
                pod=f"pod-{i}",
            )
        )
    lines.append(tetragon_exec(T0 + 100.3, "/bin/sh", "-c id", namespace="ns-3", pod="pod-100"))
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = _assert_same([path])
    assert [i.title for i in replayer.correlator.incidents.values()] == ["Shell in ns-3/pod-100"]
    # A node's credential from a public address is never left out (the detection
    # decides): 12 such nodes, two lines each, and the shell.
    assert replayer.stats.events >= 25
    assert replayer.stats.unrelated > 1000  # the focused path did leave lines out


def _config_writes() -> list[bytes]:
    """ConfigMap and Service writes: with a body the detections read, and without
    (a Metadata-level audit policy), in kube-system and elsewhere."""
    creds = {"data": {"settings.ini": "aws_secret_access_key = AKIAEXAMPLEEXAMPLE"}}
    node_port = {"spec": {"type": "NodePort", "ports": [{"port": 22, "nodePort": 30022}]}}
    out = []
    for i, verb in enumerate(["create", "update", "patch"]):
        t = T0 + 100 * i
        out += [
            audit(t, "mallory", verb, "configmaps", namespace="kube-system", name="coredns"),
            audit(t + 1, "mallory", verb, "configmaps", namespace="kube-system", name="aws-auth"),
            audit(
                t + 2,
                "mallory",
                verb,
                "configmaps",
                namespace="shop",
                name="app",
                request_object=creds,
            ),
            audit(t + 3, "alice@example.com", verb, "configmaps", namespace="shop", name="app"),
            audit(
                t + 4,
                "mallory",
                verb,
                "services",
                namespace="shop",
                name="ssh",
                request_object=node_port,
            ),
            audit(t + 5, "alice@example.com", verb, "services", namespace="shop", name="web"),
        ]
    return out


def test_config_writes_the_detections_may_call_signals_are_never_left_out() -> None:
    """What a focused replay asks before leaving a ConfigMap or Service write out
    holds for every such write the full path calls a signal."""
    ingestor = Ingestor()
    signalled = 0
    for line in _config_writes():
        events = ingestor.feed_line(line) + ingestor.flush()
        rec = AUDIT_DECODER.decode(line)
        assert rec.objectRef is not None and rec.objectRef.resource is not None
        if any(ev.signal for ev in events):
            signalled += 1
            assert SIGNAL_REQUESTS[rec.objectRef.resource](rec), line
    assert signalled == 12  # coredns, aws-auth, credentials and NodePort, three verbs


def test_config_writes_among_noise_give_what_a_full_replay_gives(tmp_path: Path) -> None:
    noise = [
        audit(
            T0 + i,
            "bob@example.com",
            "patch",
            "configmaps",
            namespace="dev",
            name=f"c{i}",
            source_ip="10.9.0.1",
        )
        for i in range(0, 400, 2)
    ]
    path = tmp_path / "config.jsonl"
    path.write_bytes(b"\n".join(sorted(noise + _config_writes(), key=len)) + b"\n")
    replayer = _assert_same([path])
    assert replayer.stats.unrelated >= 150  # the Metadata-level writes were left out

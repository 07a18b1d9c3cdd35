"""Records with the secret corpus (and hidden characters) in every field an attacker
controls: audit URI, user agent, annotations, requestObject env and args, the exec
command; Falco output and output_fields; Tetragon arguments and binary."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from secret_corpus import CORPUS

ALL = " | ".join(text for _, text, _ in CORPUS)
ENV_SECRETS = ("env-db-hunter2", "env-aws-zz9", "env-api-kk7")
SECRETS = tuple(secret for _, _, secret in CORPUS) + ENV_SECRETS
# Placed before the corpus in each field: the cut private key at its end rightly
# hides whatever follows it.
HIDDEN = "\u200b\u202e\t\x85\ufeff\u2028"
POD = "web-1"
NS = "shop"


def _env() -> list[dict[str, str]]:
    return [
        {"name": "DB_PASSWORD", "value": ENV_SECRETS[0]},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": ENV_SECRETS[1]},
        {"name": "apiKey", "value": ENV_SECRETS[2]},
        {"name": "HOME", "value": "/root"},
    ]


def audit_exec() -> dict[str, Any]:
    commands = urlencode(
        [("command", "sh"), ("command", "-c"), ("command", ALL), ("container", "web")]
    )
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "0b8c6f3e-1111-4a55-9a3e-6d2c1c1b0001",
        "stage": "ResponseStarted",
        "requestURI": f"/api/v1/namespaces/{NS}/pods/{POD}/exec?{commands}&x={quote(ALL)}",
        "verb": "create",
        # A user name is an entity: it reaches titles, entity lists and panes.
        "user": {
            "username": "ci-bot:ghp_0123456789abcdefghijABCDEFGHIJ0123",
            "groups": ["system:authenticated"],
        },
        "sourceIPs": ["203.0.113.50"],
        "userAgent": f"kubectl/v1.30 {HIDDEN}{ALL}",
        "objectRef": {
            "resource": "pods",
            "namespace": NS,
            "name": POD,
            "apiVersion": "v1",
            "subresource": "exec",
        },
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": "2026-11-27T03:00:00.000000Z",
        "stageTimestamp": "2026-11-27T03:00:00.100000Z",
    }


def audit_create_pod() -> dict[str, Any]:
    applied = json.dumps({"kind": "Pod", "spec": {"containers": [{"env": _env()}]}})
    pod = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": POD,
            "namespace": NS,
            "annotations": {
                "note": HIDDEN + ALL,
                "kubectl.kubernetes.io/last-applied-configuration": applied,
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx",
                    "command": ["sh", "-c", ALL],
                    "args": ["--token", "flag-arg-secret-1", "--password", "flag-arg-secret-2"],
                    "env": _env(),
                    "securityContext": {"privileged": True},
                }
            ],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        },
    }
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "0b8c6f3e-1111-4a55-9a3e-6d2c1c1b0002",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{NS}/pods?fieldManager={quote(ALL)}",
        "verb": "create",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.50"],
        "userAgent": ALL,
        "objectRef": {"resource": "pods", "namespace": NS, "name": POD, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": pod,
        "responseObject": copy.deepcopy(pod),
        "requestReceivedTimestamp": "2026-11-27T02:59:50.000000Z",
        "stageTimestamp": "2026-11-27T02:59:50.100000Z",
    }


def falco_alert() -> dict[str, Any]:
    return {
        "uuid": "8e2c0a52-9d0d-4a6a-8b0c-0e5f8d6c1a01",
        "time": "2026-11-27T03:00:05.123456789Z",
        "rule": "Terminal shell in container",
        "priority": "Warning",
        "source": "syscall",
        "hostname": "node-a",
        "output": f"03:00:05.123456789: Warning A shell was spawned (k8s.pod={POD} "
        f"cmdline={HIDDEN}{ALL})",
        "output_fields": {
            "k8s.ns.name": NS,
            "k8s.pod.name": POD,
            "container.id": "0123456789ab",
            "proc.cmdline": ALL,
            "proc.env": " ".join(f"{e['name']}={e['value']}" for e in _env()),
        },
        "tags": ["container", "shell", "mitre_execution", "T1059"],
    }


def tetragon_exec() -> dict[str, Any]:
    return {
        "process_exec": {
            "process": {
                "exec_id": "bm9kZTpjdXJs",
                "pid": 4242,
                "uid": 0,
                "binary": "/tmp/ghp_0123456789abcdefghijABCDEFGHIJ0123/curl",
                "arguments": HIDDEN + ALL,
                "start_time": "2026-11-27T03:00:06.000Z",
                "pod": {
                    "namespace": NS,
                    "name": POD,
                    "container": {
                        "id": "containerd://0123456789abcdef0123456789abcdef",
                        "name": "web",
                        "image": {"id": "nginx@sha256:00", "name": "nginx:1"},
                        "pid": 42,
                    },
                },
            },
            "parent": {"exec_id": "cGFyZW50", "binary": "/bin/sh"},
        },
        "node_name": "node-a",
        "time": "2026-11-27T03:00:06.123Z",
    }


def write_inputs(directory: Path) -> list[Path]:
    files = {
        "audit.log": [audit_create_pod(), audit_exec()],
        "falco.jsonl": [falco_alert()],
        "tetragon.jsonl": [tetragon_exec()],
    }
    paths = []
    for name, records in files.items():
        path = directory / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths.append(path)
    return paths


def leaks(text: str) -> list[str]:
    """The secrets (and raw hidden characters) found in `text`."""
    found = [s for s in SECRETS if s in text]
    found += [repr(ch) for ch in HIDDEN if ch in text]
    return found

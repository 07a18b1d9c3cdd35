"""Blast radius benchmark: a simulated cluster of 500 pods and 300 RBAC bindings,
created through the official client, and the time to compute the blast radius of
one incident (one service account that acted, and its pod) from the live cluster.

Three figures, with a baseline measured in the same run:
- cold: a new reader (lists every kind, one SelfSubjectRulesReview per namespace
  while impersonating the identity, the evaluation and the path search);
- warm: the same reader again, RBAC unchanged (the reviews are reused);
- after an RBAC change: one binding more, so the reviews are made again;
- baseline: one plain list of all pods, RoleBindings and ClusterRoleBindings with
  the official client (decoded as plain dicts, like the reader does).

The kubernetes client's API modules are imported before timing (a one-time cost
of the process, paid by any ktriage that watches a cluster).

    .venv/bin/python benchmarks/blast_radius.py [--pods 500] [--bindings 300] [--runs 5]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAMESPACES = 20


def populate(api: object, pods: int, bindings: int) -> None:
    """Namespaces, service accounts, pods, Roles and bindings through the official client."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(api)
    rbac = k8s.RbacAuthorizationV1Api(api)
    namespaces = [f"team-{i:02d}" for i in range(NAMESPACES)]
    core.create_namespace({"metadata": {"name": "kube-system"}})
    for ns in namespaces:
        core.create_namespace({"metadata": {"name": ns}})
        for j in range(3):
            core.create_namespaced_service_account(ns, {"metadata": {"name": f"app-{j}"}})
        rbac.create_namespaced_role(
            ns,
            {
                "metadata": {"name": "deployer"},
                "rules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
                    {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]},
                ],
            },
        )
    for i in range(pods):
        ns = namespaces[i % NAMESPACES]
        core.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": f"app-{i}", "labels": {"app": f"app-{i % 7}"}},
                "spec": {
                    "serviceAccountName": f"app-{i % 3}",
                    "containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}],
                },
            },
        )
    ref_role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"}
    ref_view = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    for i in range(bindings):
        ns = namespaces[i % NAMESPACES]
        subject = {"kind": "ServiceAccount", "namespace": ns, "name": f"app-{i % 3}"}
        if i % 10 == 0:
            rbac.create_cluster_role_binding(
                {
                    "metadata": {"name": f"view-{i}"},
                    "roleRef": ref_view,
                    "subjects": [subject],
                }
            )
        else:
            rbac.create_namespaced_role_binding(
                ns,
                {
                    "metadata": {"name": f"deployer-{i}"},
                    "roleRef": ref_role if i % 2 else ref_view,
                    "subjects": [subject],
                },
            )
    # The incident's identity may also create pods in kube-system, whose controller
    # account is bound to cluster-admin: a path for the search to find.
    rbac.create_namespaced_role(
        "kube-system",
        {
            "metadata": {"name": "pod-maker"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        "kube-system",
        {
            "metadata": {"name": "ci-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-maker",
            },
            "subjects": [{"kind": "ServiceAccount", "namespace": "team-00", "name": "app-0"}],
        },
    )
    core.create_namespaced_service_account("kube-system", {"metadata": {"name": "ops"}})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "ops-admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "namespace": "kube-system", "name": "ops"}],
        }
    )


def baseline(api: object) -> float:
    """One plain list of all pods and bindings, decoded as dicts."""
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(api)
    rbac = k8s.RbacAuthorizationV1Api(api)
    started = time.perf_counter()
    for call in (
        core.list_pod_for_all_namespaces,
        rbac.list_role_binding_for_all_namespaces,
        rbac.list_cluster_role_binding,
    ):
        json.loads(call(_preload_content=False).data)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--bindings", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    from kubernetes import client as k8s

    from ktriage.blastread import BlastReader
    from ktriage.core import blast
    from ktriage.kubeclient import client_from_kubeconfig
    from ktriage.sim.runner import SimCluster

    for name in ("CoreV1Api", "RbacAuthorizationV1Api", "NetworkingV1Api", "AuthorizationV1Api"):
        getattr(k8s, name)  # the one-time import, outside the timings

    with tempfile.TemporaryDirectory(prefix="ktriage-blast-bench-") as directory:
        sim = SimCluster(Path(directory)).start()
        try:
            path = str(sim.kubeconfig_path)
            api = client_from_kubeconfig(path, "sim-admin")
            started = time.perf_counter()
            populate(api, args.pods, args.bindings)
            print(
                f"cluster: {args.pods} pods, {args.bindings} bindings (+ bootstrap), "
                f"{NAMESPACES} namespaces, created in {time.perf_counter() - started:.1f} s"
            )
            pods = len(sim.store.list_objs("v1", "Pod"))
            rbs = len(sim.store.list_objs("rbac.authorization.k8s.io/v1", "RoleBinding"))
            crbs = len(sim.store.list_objs("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"))
            print(f"as served: {pods} pods, {rbs} RoleBindings, {crbs} ClusterRoleBindings")
            baseline(api)  # connections opened
            base = [baseline(api) for _ in range(args.runs)]

            who = [blast.Identity.service_account("team-00", "app-0")]
            target = [("team-00", "app-0")]

            def factory() -> object:
                return client_from_kubeconfig(path, "sim-admin")

            cold, warm, changed = [], [], []
            result = None
            for run in range(args.runs):
                reader = BlastReader(factory)
                started = time.perf_counter()
                result = reader.compute(who, target)
                cold.append(time.perf_counter() - started)
                started = time.perf_counter()
                reader.compute(who, target)
                warm.append(time.perf_counter() - started)
                k8s.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
                    "team-01",
                    {
                        "metadata": {"name": f"bench-change-{run}"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": "view",
                        },
                        "subjects": [{"kind": "User", "name": f"someone-{run}"}],
                    },
                )
                calls = reader.review_calls
                started = time.perf_counter()
                reader.compute(who, target)
                changed.append(time.perf_counter() - started)
                assert reader.review_calls > calls, "the RBAC change did not refresh the reviews"
                reader.close()
            assert result is not None
            # The pure part alone (evaluation, pods, path search) on what was read.
            reader = BlastReader(factory)
            view = reader.read(reader._client(), time.monotonic() + 30)
            pure = []
            for _ in range(args.runs):
                started = time.perf_counter()
                blast.compute(view, who, target)
                pure.append(time.perf_counter() - started)
            reader.close()
            paths = [p for p in result.paths if p.goal == "cluster-admin"]
            print(f"method: {result.identities[0].method}")
            shortest = min((len(p.steps) for p in paths), default=0)
            print(
                f"found: {len(result.identities[0].rights)} rights, {len(result.paths)} paths, "
                f"{len(paths)} to cluster-admin (shortest: {shortest} steps)"
            )
            b = statistics.median(base)

            def fig(name: str, values: list[float], ratio: bool = True) -> None:
                median = statistics.median(values)
                line = f"{name:<36}median {median * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
                print(line + (f"  ×{median / b:.1f} the baseline" if ratio else ""))

            fig("baseline (list pods + bindings)", base, ratio=False)
            fig("blast radius, cold reader", cold)
            fig("blast radius, warm (RBAC same)", warm)
            fig("blast radius, after an RBAC change", changed)
            fig("  of which the evaluation (pure)", pure, ratio=False)
            api.close()
        finally:
            sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

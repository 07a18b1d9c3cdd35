"""Table columns (what `kubectl get` prints) for the types in `resources_more`, as the
API server's printers define them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ktriage.sim.timefmt import human_duration

Row = Callable[[dict, float], list[Any]]


def register(tables: dict, col: Callable[..., dict], age: Row) -> None:
    def name(obj: dict) -> str:
        return (obj.get("metadata") or {}).get("name", "")

    def lease_row(obj: dict, now: float) -> list[Any]:
        return [name(obj), (obj.get("spec") or {}).get("holderIdentity", ""), age(obj, now)]

    def pdb_row(obj: dict, now: float) -> list[Any]:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return [
            name(obj),
            str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
            str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
            status.get("disruptionsAllowed", 0),
            age(obj, now),
        ]

    def csr_row(obj: dict, now: float) -> list[Any]:
        spec = obj.get("spec") or {}
        conditions = [c.get("type", "") for c in (obj.get("status") or {}).get("conditions") or []]
        if (obj.get("status") or {}).get("certificate"):
            conditions.append("Issued")
        seconds = spec.get("expirationSeconds")
        return [
            name(obj),
            age(obj, now),
            spec.get("signerName", ""),
            spec.get("username", ""),
            human_duration(seconds) if isinstance(seconds, int) else "<none>",
            ",".join(conditions) or "Pending",
        ]

    def webhook_row(obj: dict, now: float) -> list[Any]:
        return [name(obj), len(obj.get("webhooks") or []), age(obj, now)]

    def crd_row(obj: dict, now: float) -> list[Any]:
        return [name(obj), (obj.get("metadata") or {}).get("creationTimestamp", "")]

    tables[("coordination.k8s.io/v1", "Lease")] = (
        [col("Name"), col("Holder"), col("Age")],
        lease_row,
    )
    tables[("policy/v1", "PodDisruptionBudget")] = (
        [
            col("Name"),
            col("Min Available"),
            col("Max Unavailable"),
            col("Allowed Disruptions", typ="integer"),
            col("Age"),
        ],
        pdb_row,
    )
    tables[("certificates.k8s.io/v1", "CertificateSigningRequest")] = (
        [
            col("Name"),
            col("Age"),
            col("SignerName"),
            col("Requestor"),
            col("RequestedDuration"),
            col("Condition"),
        ],
        csr_row,
    )
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        tables[("admissionregistration.k8s.io/v1", kind)] = (
            [col("Name"), col("Webhooks", typ="integer"), col("Age")],
            webhook_row,
        )
    tables[("apiextensions.k8s.io/v1", "CustomResourceDefinition")] = (
        [col("Name"), col("Created At", typ="date")],
        crd_row,
    )

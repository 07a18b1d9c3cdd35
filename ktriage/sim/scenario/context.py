"""What a step knows about the pod it acts on, and the error of a step that cannot apply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class PodContext:
    """What a step knows about the pod it acts on (for placeholders and records)."""

    namespace: str
    name: str
    pod: dict[str, Any]
    container: str
    status: dict[str, Any]

    @property
    def node(self) -> str:
        return self.pod["spec"].get("nodeName", "")

    @property
    def container_id(self) -> str:
        return self.status.get("containerID", "").split("://", 1)[-1]

    def values(self) -> dict[str, str]:
        st = self.pod.get("status") or {}
        return {
            "pod": self.name,
            "namespace": self.namespace,
            "node": self.node,
            "container": self.container,
            "container_id": self.container_id,
            "cid": self.container_id[:12],
            "image": self.status.get("image", ""),
            "pod_ip": st.get("podIP", ""),
            "host_ip": st.get("hostIP", ""),
            "pod_uid": self.pod["metadata"].get("uid", ""),
            "service_account": self.pod["spec"].get("serviceAccountName", "default"),
        }


class StepFailed(RuntimeError):
    """A step could not be applied (its target is gone, ...)."""

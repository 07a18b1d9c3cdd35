"""The Kubernetes version the simulated cluster runs, and how its control-plane components
show in requests (user agents, source address)."""

from __future__ import annotations

KUBE_VERSION = "v1.37.1"
CONTROL_PLANE_IP = "10.0.0.10"
# The build the control-plane components and kubectl report in their user agents.
_AGENT_BUILD = f"{KUBE_VERSION} (linux/amd64) kubernetes/5b7e0f3"


def component_agent(component: str) -> str:
    """`COMPONENT/v1.37.1 (linux/amd64) kubernetes/5b7e0f3`, as control-plane clients send."""
    return f"{component}/{_AGENT_BUILD}"


KUBE_CONTROLLER_AGENT = component_agent("kube-controller-manager")
KUBELET_AGENT = component_agent("kubelet")
SCHEDULER_AGENT = component_agent("kube-scheduler") + "/scheduler"
KUBECTL_AGENT = component_agent("kubectl")

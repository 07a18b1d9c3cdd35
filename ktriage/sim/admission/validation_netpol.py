"""NetworkPolicy validation (pkg/apis/networking/validation): policy types, peers, ports,
ipBlocks."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from ktriage.sim.admission.fielderrors import (
    Cause,
    forbidden,
    invalid,
    not_supported,
    port_name,
    port_number,
    required,
)

POLICY_TYPES = ["Egress", "Ingress"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

Selector = Callable[[str, object], list[Cause]]


def spec(spec: dict, selector: Selector) -> list[Cause]:
    out = selector("spec.podSelector", spec.get("podSelector"))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            path = f"spec.{direction}[{i}]"
            if not isinstance(rule, dict):
                continue
            for j, port in enumerate(rule.get("ports") or []):
                out += _port(f"{path}.ports[{j}]", port)
            for j, peer in enumerate(rule.get(peers_key) or []):
                out += _peer(f"{path}.{peers_key}[{j}]", peer, selector)
    types = spec.get("policyTypes") or []
    for i, ptype in enumerate(types):
        if ptype not in POLICY_TYPES:
            out.append(not_supported(f"spec.policyTypes[{i}]", ptype, POLICY_TYPES))
    if len(types) > 2:
        out.append(invalid("spec.policyTypes", types, "may not specify more than two policyTypes"))
    return out


def _port(path: str, port: Any) -> list[Cause]:
    if not isinstance(port, dict):
        return []
    out: list[Cause] = []
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        out.append(not_supported(f"{path}.protocol", proto, PROTOCOLS))
    value = port.get("port")
    end = port.get("endPort")
    if isinstance(value, str) and not value.isdigit():
        out += port_name(f"{path}.port", value)
        if end is not None:
            out.append(
                invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric")
            )
    elif value is not None:
        number = int(value)
        out += port_number(f"{path}.port", number)
        if end is not None:
            if not isinstance(end, int) or end < number:
                out.append(
                    invalid(f"{path}.endPort", end, "must be greater than or equal to `port`")
                )
            else:
                out += port_number(f"{path}.endPort", end)
    elif end is not None:
        out.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not"))
    return out


def _peer(path: str, peer: Any, selector: Selector) -> list[Cause]:
    if not isinstance(peer, dict):
        return [required(path, "must specify a peer")]
    present = [
        k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None
    ]
    out: list[Cause] = []
    if not present:
        out.append(required(path, "must specify a peer"))
    elif "ipBlock" in present and len(present) > 1:
        out.append(forbidden(path, "may not specify both ipBlock and another peer"))
    if peer.get("podSelector") is not None:
        out += selector(f"{path}.podSelector", peer["podSelector"])
    if peer.get("namespaceSelector") is not None:
        out += selector(f"{path}.namespaceSelector", peer["namespaceSelector"])
    block = peer.get("ipBlock")
    if isinstance(block, dict):
        out += _ip_block(f"{path}.ipBlock", block)
    return out


def _ip_block(path: str, block: dict) -> list[Cause]:
    cidr_text = block.get("cidr")
    if not cidr_text:
        return [required(f"{path}.cidr")]
    try:
        cidr = ipaddress.ip_network(str(cidr_text), strict=False)
    except ValueError:
        return [invalid(f"{path}.cidr", cidr_text, CIDR_MESSAGE)]
    if "/" not in str(cidr_text):
        return [invalid(f"{path}.cidr", cidr_text, CIDR_MESSAGE)]
    out: list[Cause] = []
    for i, text in enumerate(block.get("except") or []):
        epath = f"{path}.except[{i}]"
        try:
            if "/" not in str(text):
                raise ValueError(text)
            exc = ipaddress.ip_network(str(text), strict=False)
        except ValueError:
            out.append(invalid(epath, text, CIDR_MESSAGE))
            continue
        if (
            exc.version != cidr.version
            or not exc.subnet_of(cidr)  # type: ignore[arg-type]
            or exc.prefixlen <= cidr.prefixlen
        ):
            out.append(invalid(epath, text, "must be a strict subset of `cidr`"))
    return out

"""Who acted: the control plane's own identities, nodes, and where a credential was used.

Only the control plane acting as it normally does is exempt from audit detections:
the API server, the scheduler, kube-controller-manager and the service accounts it
runs its controllers as, and nodes for their own objects. Every other account,
kube-system's included, is judged like any other identity. Decisions are made from
the authenticated `user.username` only, never from a user agent or an object name.

`ClusterNetworks` knows the cluster's addresses (learnt from node and pod objects,
plus configured CIDRs), so that a `system:` credential used from a public address
outside them can be told apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ktriage.core.memo import remembered

SA_PREFIX = "system:serviceaccount:"
NODE_PREFIX = "system:node:"

# The service accounts kube-controller-manager runs its controllers as (with
# --use-service-account-credentials), from its bootstrap RBAC policy
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/controller_policy.go and
# namespace_policy.go), plus cloud-controller-manager's.
CONTROLLER_ACCOUNTS = frozenset(
    {
        "attachdetach-controller",
        "bootstrap-signer",
        "certificate-controller",
        "cloud-controller-manager",
        "clusterrole-aggregation-controller",
        "cronjob-controller",
        "daemon-set-controller",
        "deployment-controller",
        "device-taint-eviction-controller",
        "disruption-controller",
        "endpoint-controller",
        "endpointslice-controller",
        "endpointslicemirroring-controller",
        "ephemeral-volume-controller",
        "expand-controller",
        "generic-garbage-collector",
        "horizontal-pod-autoscaler",
        "job-controller",
        "kube-apiserver-serving-clustertrustbundle-publisher",
        "legacy-service-account-token-cleaner",
        "namespace-controller",
        "node-controller",
        "persistent-volume-binder",
        "pod-garbage-collector",
        "podcertificaterequestcleaner",
        "pv-protection-controller",
        "pvc-protection-controller",
        "replicaset-controller",
        "replication-controller",
        "resource-claim-controller",
        "resourcequota-controller",
        "root-ca-cert-publisher",
        "route-controller",
        "selinux-warning-controller",
        "service-account-controller",
        "service-cidrs-controller",
        "service-controller",
        "statefulset-controller",
        "storage-version-garbage-collector",
        "storage-version-migrator-controller",
        "token-cleaner",
        "ttl-after-finished-controller",
        "ttl-controller",
        "validatingadmissionpolicy-status-controller",
        "volumeattributesclass-protection-controller",
    }
)
CONTROL_PLANE_USERS = frozenset(
    {
        "system:apiserver",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:kube-proxy",
    }
)
CONTROLLER_USERS = frozenset(f"{SA_PREFIX}kube-system:{name}" for name in CONTROLLER_ACCOUNTS)


def is_control_plane(username: str) -> bool:
    """The API server, scheduler, kube-proxy, kube-controller-manager and its
    controllers' service accounts (by the authenticated name, exactly)."""
    return username in CONTROL_PLANE_USERS or username in CONTROLLER_USERS


def node_of(username: str) -> str:
    """`worker-1` for `system:node:worker-1`, else ""."""
    return username[len(NODE_PREFIX) :] if username.startswith(NODE_PREFIX) else ""


def is_controller_account(namespace: str, name: str) -> bool:
    """A kube-system service account one of the control plane's controllers runs as."""
    return namespace == "kube-system" and name in CONTROLLER_ACCOUNTS


def is_system_credential(username: str) -> bool:
    """A credential the cluster issues to itself or its workloads (nodes, service
    accounts, control-plane components, bootstrap tokens): such a credential is
    used from inside the cluster. Anonymous requests have their own detection."""
    return username.startswith("system:") and username != "system:anonymous"


# Address blocks that are never judged "outside": private networks (a VPN or a peered
# network looks the same as the cluster's own), loopback and link-local.
_NEVER_OUTSIDE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "::/128",
    )
)
_MAX_CACHE = 50_000
_MAX_LEARNT = 100_000


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a record (an IPv6 zone or IPv4-mapped form read plainly), or
    None when the text is not one."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0].strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_address(text: str) -> bool:
    """Whether an address may be outside any cluster: not private, loopback or
    link-local (and a readable address at all)."""
    ip = parse_ip(text)
    if ip is None:
        return False
    return not any(ip.version == n.version and ip in n for n in _NEVER_OUTSIDE)


_PUBLIC: dict[str, bool] = {}


@remembered(_PUBLIC, _MAX_CACHE)
def public_address(text: str) -> bool:
    """is_public_address, remembered (a log names few addresses, many times)."""
    return is_public_address(text)


class ClusterNetworks:
    """The cluster's node and pod addresses as far as they are known: learnt from
    node and pod objects, and configured (`[networks] cluster = [CIDR, ...]`).

    `outside(ip)` is True only for a public address, once anything is known, that is
    in no configured network and not near a learnt address (the same /24, or /64
    for IPv6): a node or pod seen with a public address vouches for its neighbours.
    Until then nothing is called outside."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        self.configured: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [
            ipaddress.ip_network(c, strict=False) for c in configured
        ]
        self._learnt_nets: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
        self._learnt_any = False
        self._cache: dict[str, bool] = {}

    @property
    def known(self) -> bool:
        return self._learnt_any or bool(self.configured)

    def learn(self, text: object) -> None:
        """An address a node or pod was seen with."""
        if not isinstance(text, str):
            return
        ip = parse_ip(text)
        if ip is None or ip.is_unspecified:
            return
        self._learnt_any = True
        if not is_public_address(text):
            return
        prefix = 24 if ip.version == 4 else 64
        net = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        if net not in self._learnt_nets and len(self._learnt_nets) < _MAX_LEARNT:
            self._learnt_nets.add(net)
            self._cache.clear()

    def learn_object(self, obj: object) -> None:
        """Addresses in a Node (status.addresses) or Pod (status.podIP(s), hostIP(s))
        object, or a patch of one."""
        if not isinstance(obj, dict):
            return
        status = obj.get("status")
        if not isinstance(status, dict):
            return
        for key in ("podIP", "hostIP"):
            self.learn(status.get(key))
        for key in ("podIPs", "hostIPs", "addresses"):
            items = status.get(key)
            if isinstance(items, list):
                for item in items[:64]:
                    if isinstance(item, dict):
                        if key == "addresses" and item.get("type") not in (
                            "InternalIP",
                            "ExternalIP",
                        ):
                            continue
                        self.learn(item.get("ip") or item.get("address"))

    def outside(self, text: str) -> bool:
        """Whether a source address is outside the cluster's networks (False while
        no network is known, and for an address that is not one)."""
        if not self.known:
            return False
        found = self._cache.get(text)
        if found is None:
            found = self._outside(text)
            if len(self._cache) > _MAX_CACHE:
                self._cache.clear()
            self._cache[text] = found
        return found

    def _outside(self, text: str) -> bool:
        if not public_address(text):
            return False
        ip = parse_ip(text)
        assert ip is not None
        for net in self.configured:
            if ip.version == net.version and ip in net:
                return False
        prefix = 24 if ip.version == 4 else 64
        return ipaddress.ip_network(f"{ip}/{prefix}", strict=False) not in self._learnt_nets

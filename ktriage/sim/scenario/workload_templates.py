"""Pods and the workloads that own them (Deployments, ReplicaSets, DaemonSets, Jobs) and
the ready-made add-ons of every cluster, as `ObjectFactory` builds them.

`WorkloadTemplates` is a part of `ObjectFactory` (its base class): it uses the
factory's generated ids, node layout and metadata helpers.
"""

from __future__ import annotations

from typing import Any

from ktriage.sim.controllers.workloads import owner_reference
from ktriage.sim.scenario.templates import (
    CONTAINER_KEYS,
    DEFAULT_TOLERATIONS,
    TOKEN_SOURCES,
    WORKLOAD_KEYS,
    ContainerSpec,
    NodeInfo,
    Template,
    TemplateError,
    check_keys,
    deployment_status,
    image_id,
    image_ref,
    load_addons,
    need,
    qos_class,
    replicaset_status,
    status_condition,
    substitute,
    template_hash,
)
from ktriage.sim.timefmt import rfc3339


class WorkloadTemplates:
    """The pod and workload templates of `ObjectFactory`."""

    def _containers(self, tpl: Template, what: str, key: str = "containers") -> list[ContainerSpec]:
        raw = tpl.get(key)
        if raw is None and key == "containers":
            raw = [
                {
                    "name": tpl.get("name"),
                    "image": need(tpl, "image", what),
                    "command": tpl.get("command"),
                    "args": tpl.get("args"),
                    "ports": tpl.get("ports"),
                    "resources": tpl.get("resources"),
                    "securityContext": tpl.get("securityContext"),
                }
            ]
        if raw is not None and not isinstance(raw, list):
            raise TemplateError(f"{what}: {key} must be a list")
        out = []
        for i, c in enumerate(raw or []):
            where = f"{what}: {key}[{i}]"
            check_keys(c, CONTAINER_KEYS, where)
            try:
                ports = [int(p) for p in c.get("ports") or []]
            except (TypeError, ValueError):
                raise TemplateError(f"{where}: ports must be numbers") from None
            out.append(
                ContainerSpec(
                    name=need(c, "name", where),
                    image=need(c, "image", where),
                    command=c.get("command"),
                    args=c.get("args"),
                    ports=ports,
                    resources=c.get("resources"),
                    security_context=c.get("securityContext"),
                    env=c.get("env"),
                    volume_mounts=c.get("volumeMounts"),
                )
            )
        return out

    def _pod_spec(
        self,
        tpl: Template,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        restart_policy: str,
    ) -> dict[str, Any]:
        sa = tpl.get("serviceAccount") or "default"
        token_mount = {
            "name": f"kube-api-access-{self.suffix(5)}",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }

        def with_token(c: ContainerSpec) -> dict[str, Any]:
            spec = c.to_spec()
            spec["volumeMounts"] = [*(spec.get("volumeMounts") or []), token_mount]
            return spec

        volumes = list(tpl.get("volumes") or [])
        volumes.append(
            {
                "name": token_mount["name"],
                "projected": {"defaultMode": 420, "sources": TOKEN_SOURCES},
            }
        )
        spec: dict[str, Any] = {
            "containers": [with_token(c) for c in containers],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": restart_policy,
            "schedulerName": "default-scheduler",
            "securityContext": tpl.get("podSecurityContext") or {},
            "serviceAccount": sa,
            "serviceAccountName": sa,
            "terminationGracePeriodSeconds": 30,
            "tolerations": tpl.get("tolerations") or DEFAULT_TOLERATIONS,
            "volumes": volumes,
        }
        if init_containers:
            spec["initContainers"] = [with_token(c) for c in init_containers]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if tpl.get(flag):
                spec[flag] = True
        if tpl.get("priorityClassName"):
            spec["priorityClassName"] = tpl["priorityClassName"]
        return spec

    def container_status(self, c: ContainerSpec, started: float, running: bool) -> dict[str, Any]:
        return {
            "name": c.name,
            "image": image_ref(c.image),
            "imageID": image_id(c.image),
            "containerID": self.container_id(),
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "started": running,
            "state": {"running": {"startedAt": rfc3339(started)}},
        }

    def build_pod(
        self,
        tpl: Template,
        *,
        name: str,
        namespace: str,
        labels: dict[str, str],
        owner: dict[str, Any] | None,
        node: NodeInfo,
        created: float,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec] | None = None,
        restart_policy: str = "Always",
        phase: str = "Running",
    ) -> dict[str, Any]:
        """A scheduled, started pod with a status kubelet would report."""
        init_containers = init_containers or []
        spec = self._pod_spec(tpl, containers, init_containers, restart_policy)
        spec["nodeName"] = node.name
        pod_ip = node.ip if tpl.get("hostNetwork") else self.pod_ip(node)
        started = created + 2 + self.rng.random() * 3
        ready_at = started + 1 + self.rng.random() * 4
        running = phase == "Running"
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": self.uid(),
            "labels": dict(labels),
            "creationTimestamp": rfc3339(created),
        }
        if tpl.get("annotations"):
            meta["annotations"] = dict(tpl["annotations"])
        if owner:
            meta["ownerReferences"] = [owner]
            meta["generateName"] = name[: name.rfind("-") + 1]
        ready = "True" if running else "False"
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": spec,
            "status": {
                "phase": phase,
                "conditions": [
                    status_condition("PodReadyToStartContainers", "True", started),
                    status_condition("Initialized", "True", started),
                    status_condition("Ready", ready, ready_at),
                    status_condition("ContainersReady", ready, ready_at),
                    status_condition("PodScheduled", "True", created),
                ],
                "hostIP": node.ip,
                "hostIPs": [{"ip": node.ip}],
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "qosClass": qos_class(containers),
                "startTime": rfc3339(created),
                "containerStatuses": [
                    self.container_status(c, started, running) for c in containers
                ],
            },
        }
        if init_containers:
            statuses = []
            for c in init_containers:
                st = self.container_status(c, created + 1, False)
                st["state"] = {
                    "terminated": {
                        "containerID": st["containerID"],
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": rfc3339(created + 1),
                        "finishedAt": rfc3339(created + 2),
                    }
                }
                st["ready"] = True
                statuses.append(st)
            pod["status"]["initContainerStatuses"] = statuses
        for line in tpl.get("logs") or []:
            # Startup lines go to the first container, once it is ready.
            text = str(line).replace("${node}", node.name)
            self.initial_logs.append((namespace, name, containers[0].name, text, ready_at))
        return pod

    def t_pod(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """A bare pod (no controller)."""
        check_keys(tpl, (*WORKLOAD_KEYS, "restartPolicy", "phase"), "pod")
        name = need(tpl, "name", "pod")
        namespace = need(tpl, "namespace", "pod")
        pod = self.build_pod(
            tpl,
            name=name,
            namespace=namespace,
            labels=dict(tpl.get("labels") or {"run": name}),
            owner=None,
            node=self.place(tpl),
            created=self._created(tpl, now, 0),
            containers=self._containers(tpl, f"pod {name}"),
            init_containers=self._containers(tpl, f"pod {name}", "initContainers"),
            restart_policy=tpl.get("restartPolicy") or "Always",
            phase=tpl.get("phase") or "Running",
        )
        return [pod]

    def pod_template(
        self,
        tpl: Template,
        labels: dict[str, str],
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        restart_policy: str = "Always",
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "containers": [c.to_spec() for c in containers],
            "restartPolicy": restart_policy,
            "serviceAccountName": tpl.get("serviceAccount") or "default",
            "securityContext": tpl.get("podSecurityContext") or {},
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
        }
        if init_containers:
            spec["initContainers"] = [c.to_spec() for c in init_containers]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if tpl.get(flag):
                spec[flag] = True
        for key in ("volumes", "tolerations", "priorityClassName"):
            if tpl.get(key):
                spec[key] = tpl[key]
        return {"metadata": {"labels": dict(labels)}, "spec": spec}

    def t_deployment(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        check_keys(tpl, (*WORKLOAD_KEYS, "replicas", "revision"), "deployment")
        name = need(tpl, "name", "deployment")
        namespace = need(tpl, "namespace", "deployment")
        what = f"deployment {namespace}/{name}"
        try:
            replicas = int(tpl.get("replicas", 1))
            revision = int(tpl.get("revision", 1))
        except (TypeError, ValueError):
            raise TemplateError(f"{what}: replicas and revision must be numbers") from None
        containers = self._containers(tpl, what)
        init_containers = self._containers(tpl, what, "initContainers")
        labels = {"app": name, "app.kubernetes.io/name": name, **(tpl.get("labels") or {})}
        created = self._created(tpl, now, 86400 * 9)
        deployment: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": self.uid(),
                "generation": revision,
                "labels": dict(labels),
                "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                "creationTimestamp": rfc3339(created),
            },
            "spec": {
                "replicas": replicas,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
                "template": self.pod_template(tpl, labels, containers, init_containers),
            },
            "status": deployment_status(replicas, revision, created),
        }
        rs, pods = self.replicaset_with_pods(
            deployment, tpl, containers, init_containers, replicas, revision, created + 1
        )
        return [deployment, rs, *pods]

    def replicaset_with_pods(
        self,
        deployment: dict[str, Any],
        tpl: Template,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        replicas: int,
        revision: int,
        created: float,
        *,
        make_pods: bool = True,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The ReplicaSet of a deployment's current template, and its pods."""
        name = deployment["metadata"]["name"]
        namespace = deployment["metadata"]["namespace"]
        template = deployment["spec"]["template"]
        pth = template_hash(template)
        labels = {**template["metadata"]["labels"], "pod-template-hash": pth}
        selector = {**deployment["spec"]["selector"]["matchLabels"], "pod-template-hash": pth}
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-{pth}",
                "namespace": namespace,
                "uid": self.uid(),
                "generation": 1,
                "labels": dict(labels),
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + max(1, replicas // 4)),
                    "deployment.kubernetes.io/revision": str(revision),
                },
                "ownerReferences": [owner_reference(deployment)],
                "creationTimestamp": rfc3339(created),
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": dict(labels)}, "spec": template["spec"]},
            },
            "status": replicaset_status(replicas),
        }
        pods = []
        if make_pods:
            for _ in range(replicas):
                pods.append(self.replicaset_pod(rs, tpl, containers, init_containers, created + 1))
        return rs, pods

    def replicaset_pod(
        self,
        rs: dict[str, Any],
        tpl: Template,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        created: float,
    ) -> dict[str, Any]:
        """A new pod of a deployment's ReplicaSet (registered as the workload's last pod)."""
        namespace = rs["metadata"]["namespace"]
        deployment = rs["metadata"]["ownerReferences"][0]["name"]
        pod_name = f"{rs['metadata']['name']}-{self.suffix(5)}"
        pod = self.build_pod(
            tpl,
            name=pod_name,
            namespace=namespace,
            labels=rs["spec"]["template"]["metadata"]["labels"],
            owner=owner_reference(rs),
            node=self.place(tpl),
            created=created,
            containers=containers,
            init_containers=init_containers,
        )
        self.workload_pods.setdefault((namespace, deployment), []).append(pod_name)
        return pod

    def t_daemonset(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        check_keys(tpl, WORKLOAD_KEYS, "daemonset")
        name = need(tpl, "name", "daemonset")
        namespace = need(tpl, "namespace", "daemonset")
        what = f"daemonset {namespace}/{name}"
        containers = self._containers(tpl, what)
        init_containers = self._containers(tpl, what, "initContainers")
        labels = {"app.kubernetes.io/name": name, **(tpl.get("labels") or {})}
        created = self._created(tpl, now, 86400 * 11)
        template = self.pod_template(tpl, labels, containers, init_containers)
        nodes = [self.node(n) for n in tpl.get("nodes") or []] or self.nodes
        count = len(nodes)
        ds: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": self.uid(),
                "generation": 1,
                "labels": dict(labels),
                "annotations": {"deprecated.daemonset.template.generation": "1"},
                "creationTimestamp": rfc3339(created),
            },
            "spec": {
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": template,
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                },
            },
            "status": {
                "currentNumberScheduled": count,
                "desiredNumberScheduled": count,
                "numberAvailable": count,
                "numberMisscheduled": 0,
                "numberReady": count,
                "observedGeneration": 1,
                "updatedNumberScheduled": count,
            },
        }
        pod_labels = {
            **labels,
            "controller-revision-hash": template_hash(template)[:10],
            "pod-template-generation": "1",
        }
        pods = []
        for node in nodes:
            pod_name = f"{name}-{self.suffix(5)}"
            pods.append(
                self.build_pod(
                    {**tpl, "node": node.name},
                    name=pod_name,
                    namespace=namespace,
                    labels=pod_labels,
                    owner=owner_reference(ds),
                    node=node,
                    created=created + 30 + node.index,
                    containers=containers,
                    init_containers=init_containers,
                )
            )
            self.workload_pods.setdefault((namespace, name), []).append(pod_name)
        return [ds, *pods]

    def t_job(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """A Job with one running pod (a later `container_state` step completes it)."""
        check_keys(tpl, WORKLOAD_KEYS, "job")
        name = need(tpl, "name", "job")
        namespace = need(tpl, "namespace", "job")
        containers = self._containers(tpl, f"job {namespace}/{name}")
        created = self._created(tpl, now, 0)
        job_uid = self.uid()
        labels = {
            "batch.kubernetes.io/controller-uid": job_uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": job_uid,
            "job-name": name,
            **(tpl.get("labels") or {}),
        }
        job: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": job_uid,
                "generation": 1,
                "labels": dict(tpl.get("labels") or {}),
                "creationTimestamp": rfc3339(created),
            },
            "spec": {
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "completions": 1,
                "parallelism": 1,
                "manualSelector": False,
                "podReplacementPolicy": "TerminatingOrFailed",
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}},
                "suspend": False,
                "template": self.pod_template(tpl, labels, containers, [], "Never"),
            },
            "status": {
                "active": 1,
                "ready": 1,
                "startTime": rfc3339(created),
                "terminating": 0,
                "uncountedTerminatedPods": {},
            },
        }
        pod_name = f"{name}-{self.suffix(5)}"
        pod = self.build_pod(
            tpl,
            name=pod_name,
            namespace=namespace,
            labels=labels,
            owner=owner_reference(job),
            node=self.place(tpl),
            created=created + 0.5,
            containers=containers,
            restart_policy="Never",
        )
        self.workload_pods.setdefault((namespace, name), []).append(pod_name)
        return [job, pod]

    # ready-made parts of every cluster --------------------------------------

    def _addon(self, key: str, tpl: Template, now: float) -> list[dict[str, Any]]:
        check_keys(tpl, ("version",), key)
        addon = load_addons()[key]
        version = str(tpl.get("version") or addon["version"])
        objs: list[dict[str, Any]] = []
        for item in substitute(addon["objects"], "${version}", version):
            objs += self.expand(item, now=now)
        return objs

    def t_kube_system(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """The namespaces and add-ons every cluster has: CoreDNS, kube-proxy, metrics-server."""
        return self._addon("kube_system", tpl, now)

    def t_falco(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """Falco as its Helm chart installs it: namespace `falco`, one pod per node."""
        return self._addon("falco", tpl, now)

    def t_tetragon(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """Tetragon as its Helm chart installs it: kube-system, `export-stdout` + `tetragon`."""
        return self._addon("tetragon", tpl, now)

    def t_cilium(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """Cilium: the agent DaemonSet in kube-system and its policy CRDs."""
        return self._addon("cilium", tpl, now)

    def t_calico(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """Calico: calico-node in calico-system and `projectcalico.org/v3` NetworkPolicy."""
        return self._addon("calico", tpl, now)

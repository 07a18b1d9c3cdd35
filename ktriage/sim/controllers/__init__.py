"""What reacts to changes in the cluster, one module per controller.

- `manager`: the ControllerManager (the store's change stream handed to the
  controllers on the sim's loop, timers on the sim clock) and `run` to start it;
- `replicaset`, `deployment`, `statefulset`, `daemonset`, `job`, `cronjob`: the
  workload controllers of kube-controller-manager (shared pieces in `workloads`);
- `garbagecollector` and `deletion`: graceful deletion, finalizers, propagation;
- `kubelet` (starting, stopping and restarting containers, ephemeral containers;
  `lifecycle` says when a simulated container exits) and `podstatus` (pod defaults
  and a consistent pod status);
- `defaults`: workload spec defaults; `origin`: who is writing (client or sim).
"""

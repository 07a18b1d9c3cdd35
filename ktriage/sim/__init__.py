"""A simulated Kubernetes cluster on loopback, organised like the control plane it simulates.

- `storage/`: the object store (resourceVersions, watch history), selectors, patches;
- `server/`: the API server: request pipeline (`app`, `request`, `filters`) and handlers
  by area (reads, writes, subresources, streaming, reviews), discovery, OpenAPI, tables,
  protobuf, Status errors;
- `auth/`: authentication (static tokens, ServiceAccount JWTs), impersonation, the RBAC
  authorizer and the bootstrap roles;
- `admission/`: what checks an object before it is stored;
- `controllers/`: what reacts to changes: the controller manager (workload controllers,
  garbage collection, graceful deletion) and the kubelet's part (pod lifecycle);
- `audit`, `faults`, `noise`: the audit log writer, injected faults, background traffic;
- `scenario/`: incidents as data (format), the objects they build, the player and its
  step handlers; the bundled scenario files are in `scenarios/`;
- `runner`: one whole cluster (`SimCluster`) and the `ktriage sim` command.

The sim imports nothing of the product; the product imports it only to run it.
"""

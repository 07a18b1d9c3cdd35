"""The HTTP side of the simulated kube-apiserver: request pipeline, handlers per area,
discovery, OpenAPI, tables, protobuf and the Status errors it answers with."""

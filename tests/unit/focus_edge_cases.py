# ruff: noqa: E501  (records as they were built, one per line)
"""Lines a review built to break the focused replay, each once a real difference
from the full path (see test_focus.py)."""

EDGE_CASES: dict[str, bytes] = {
    "generate_name": (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/pods","user":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"pods","namespace":"default"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:01.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:01.000000Z","responseObject":{"kind":"Pod","metadata":{"name":"web-abc12","namespace":"default"}}}\n'
        b'{"process_exec":{"process":{"exec_id":"e1","binary":"/bin/bash","arguments":"-i","pod":{"namespace":"default","name":"web-abc12","container":{"id":"containerd://abcdef0123456789"}}},"parent":{"binary":"/usr/bin/python"}},"node_name":"n1","time":"2024-05-01T10:00:05.000000Z"}\n'
    ),
    "untimed_null_stage": (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a2","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/configmaps","user":{"username":"alice"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"configmaps","namespace":"default","name":"cm"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:01.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:01.000000Z"}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a3","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/configmaps","user":{"username":"bob"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"configmaps","namespace":"default","name":"cm"},"responseStatus":{"code":200},"stageTimestamp":null}\n'
    ),
    "untimed_after_falco_debug": (
        b'{"time":"2024-05-01T10:00:02.000000Z","rule":"Some debug rule","priority":"Debug","output":"dbg","output_fields":{"proc.name":"x"}}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a4","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/configmaps","user":{"username":"bob"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"configmaps","namespace":"default","name":"cm"},"responseStatus":{"code":200}}\n'
    ),
    "held_release": (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"RequestReceived","verb":"create","requestURI":"/api/v1/pods","user":{"username":"mallory"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"pods","namespace":"default","name":"web-1","subresource":"exec"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:00.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z"}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"p1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/configmaps","user":{"username":"alice"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"configmaps","namespace":"default","name":"cm"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:40.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:40.000000Z"}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"ResponseComplete","verb":"create","requestURI":"/api/v1/pods","user":{"username":"mallory"},"sourceIPs":["10.0.0.9"],"objectRef":{"resource":"pods","namespace":"default","name":"web-1","subresource":"exec"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:20.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:20.000000Z"}\n'
    ),
    "held_until_flush_context": (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"RequestReceived","verb":"create","requestURI":"/api/v1/pods","user":{"username":"mallory"},"sourceIPs":["10.0.0.7"],"objectRef":{"resource":"pods","namespace":"default","name":"web-1","subresource":"exec"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:00.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z"}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"p1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods","user":{"username":"alice"},"sourceIPs":["10.0.0.8"],"objectRef":{"resource":"pods","namespace":"default","name":"web-1"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:05.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:05.000000Z"}\n'
    ),
    "held_released_in_pass2": (
        b'{"process_exec":{"process":{"exec_id":"e1","binary":"/bin/bash","arguments":"-i","pod":{"namespace":"default","name":"other","container":{"id":"containerd://abcdef0123456789"}}},"parent":{"binary":"/usr/bin/python"}},"node_name":"n1","time":"2024-05-01T10:00:01.000000Z"}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"RequestReceived","verb":"create","requestURI":"/api/v1/pods","user":{"username":"mallory"},"sourceIPs":["10.0.0.7"],"objectRef":{"resource":"pods","namespace":"default","name":"web-1","subresource":"exec"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:02.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:02.000000Z"}\n'
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"p1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods","user":{"username":"alice"},"sourceIPs":["10.0.0.8"],"objectRef":{"resource":"pods","namespace":"default","name":"other"},"responseStatus":{"code":200},"stageTimestamp":"2024-05-01T10:00:50.000000Z","requestReceivedTimestamp":"2024-05-01T10:00:50.000000Z"}\n'
    ),
    "escaped_key": (
        b'{"kind":"Event" ,"audit\\u0049D":"z","verb":"get","user":{"username":"rule"},"objectRef":{"resource":"configmaps","name":"priority"},"stageTimestamp":"2024-05-01T10:00:00.000000Z"}\n'
    ),
}

"""CertificateSigningRequests as the registry strategy keeps them: the requesting user is
recorded on create, the spec never changes afterwards, and a request is not both approved
and denied."""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from ktriage.sim.admission.fielderrors import Cause, invalid, required

USER_FIELDS = ("username", "uid", "groups", "extra")


def prepare(obj: dict, old: dict | None, user: Any) -> None:
    """Fill what the server owns: the requestor on create, the old spec on update."""
    if old is not None:
        obj["spec"] = copy.deepcopy(old.get("spec") or {})
        return
    spec = obj.setdefault("spec", {}) if isinstance(obj.get("spec"), dict) else {}
    obj["spec"] = spec
    for key in USER_FIELDS:
        spec.pop(key, None)
    if user is not None:
        spec["username"] = user.username
        if user.uid:
            spec["uid"] = user.uid
        spec["groups"] = list(user.all_groups)


def validate(obj: dict) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out: list[Cause] = []
    request = spec.get("request")
    if not request:
        out.append(required("spec.request"))
    else:
        try:
            pem = base64.b64decode(str(request), validate=True)
        except (binascii.Error, ValueError):
            pem = b""
        if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
            out.append(
                invalid("spec.request", "<request>", "PEM block type must be CERTIFICATE REQUEST")
            )
    if not spec.get("signerName"):
        out.append(required("spec.signerName"))
    seen: set[str] = set()
    for i, cond in enumerate((obj.get("status") or {}).get("conditions") or []):
        ctype = cond.get("type") if isinstance(cond, dict) else None
        if ctype in ("Approved", "Denied") and ({"Approved", "Denied"} - {ctype}) & seen:
            out.append(
                invalid(
                    f"status.conditions[{i}].type",
                    ctype,
                    "Approved and Denied conditions are mutually exclusive",
                )
            )
        if ctype:
            seen.add(ctype)
    return out

"""Image pulls as kubelet reports them when they fail.

The simulated registry has every image except those on a host under `.invalid`
(RFC 2606: such a name never resolves, so a real cluster fails the same pull, and
the conformance tests mean the same on both). A failed pull leaves the container
waiting in `ErrImagePull` with the runtime's error, then in `ImagePullBackOff`
while kubelet backs off; it is never started and never ready.
"""

from __future__ import annotations

from ktriage.sim.controllers.podstatus import full_image

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
# Sim seconds from the failed pull to kubelet reporting its back-off.
BACK_OFF_SECONDS = 1.0


def _host(reference: str) -> str:
    return reference.split("/", 1)[0].split(":", 1)[0].lower()


def pull_error(image: str) -> str | None:
    """The runtime's error when `image` cannot be pulled, else None."""
    reference = full_image(image)
    host = _host(reference)
    if not (host == "invalid" or host.endswith(".invalid")):
        return None
    repository = reference.split("/", 1)[1] if "/" in reference else reference
    tag = repository.rsplit(":", 1)[1] if ":" in repository.rsplit("/", 1)[-1] else "latest"
    path = repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository
    return (
        f'rpc error: code = Unknown desc = failed to pull and unpack image "{reference}": '
        f'failed to resolve reference "{reference}": failed to do request: Head '
        f'"https://{host}/v2/{path}/manifests/{tag}": dial tcp: lookup {host}: no such host'
    )


def failed_pull_status(cs: dict, error: str) -> None:
    """A container status whose image could not be pulled (first report)."""
    cs.update(
        ready=False,
        started=False,
        state={"waiting": {"reason": ERR_IMAGE_PULL, "message": error}},
    )
    cs.pop("containerID", None)
    cs["imageID"] = ""


def backing_off(cs: dict, image: str) -> bool:
    """Move a container from `ErrImagePull` to `ImagePullBackOff`; False if it moved on."""
    waiting = (cs.get("state") or {}).get("waiting") or {}
    if waiting.get("reason") != ERR_IMAGE_PULL:
        return False
    cs["state"] = {
        "waiting": {
            "reason": IMAGE_PULL_BACK_OFF,
            "message": f'Back-off pulling image "{image}"',
        }
    }
    return True

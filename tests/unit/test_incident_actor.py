"""Which identity acted in an incident (the `B` and `R` keys act on it)."""

from __future__ import annotations

from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.ui.hooks import ActorCache, incident_actor

SA = entity(EntityKind.SERVICE_ACCOUNT, "ci", "runner")
ADMIN = entity(EntityKind.USER, None, "kubernetes-admin")
POD = entity(EntityKind.POD, "ci", "runner-1")


def _ev(source: str, entities: tuple, *, signal: bool = False, kind: str = "api-request") -> Event:
    return Event(
        time=1.0,
        source=source,
        ref="r",
        kind=kind,
        severity=Severity.INFO,
        summary="s",
        entities=entities,
        signal=signal,
    )


def test_the_actor_is_who_made_the_audited_requests_signals_weighing_more() -> None:
    events = [
        _ev("audit", (ADMIN, POD)),
        _ev("audit", (ADMIN, POD)),
        _ev("audit", (SA, POD), signal=True),
        _ev("falco", (POD,), signal=True),
    ]
    assert incident_actor(events) == SA


def test_ktriage_itself_is_never_the_actor() -> None:
    """Its own requests (kind ktriage-request) and its action events do not count."""
    events = [
        _ev("audit", (ADMIN,), kind="ktriage-request"),
        _ev("ktriage", (POD, ADMIN), kind="action-cordon"),
    ]
    assert incident_actor(events) is None
    assert incident_actor([_ev("falco", (POD,), signal=True)]) is None


def test_the_actor_is_computed_again_when_the_incident_changed_at_most_every_2s() -> None:
    from ktriage.core.model import Incident
    from ktriage.core.model import Severity as Sev

    store = {1: _ev("audit", (SA,), signal=True)}
    reads: list[int] = []

    def get(eid: int) -> Event:
        reads.append(eid)
        return store[eid]

    now = [100.0]
    inc = Incident("INC-1", Sev.HIGH, "t", 0.0, 1.0, 0.0, (), (SA,), timeline=[(1.0, 1)])
    cache = ActorCache(get, every=2.0, clock=lambda: now[0])
    assert cache.actor(inc) == SA and cache.actor(inc) == SA
    assert reads == [1]
    store[2] = store[3] = _ev("audit", (ADMIN,), signal=True)
    inc.timeline += [(2.0, 2), (3.0, 3)]
    inc.revision += 1
    assert cache.actor(inc) == SA  # changed, but asked again within 2 s
    now[0] += 2.5
    assert cache.actor(inc) == ADMIN and reads == [1, 1, 2, 3]
    assert cache.actor(None) is None

from __future__ import annotations

import stat
from pathlib import Path

from markdown_check import assert_inert

from ktriage.core.correlate import Correlator
from ktriage.core.model import Attack, Event, Severity, entity
from ktriage.core.snapshot import md_escape, render_markdown, time_to_contain, write_snapshot

POD = entity("Pod", "shop", "storefront-1")


def _incident() -> tuple[Correlator, str]:
    c = Correlator()
    c.add(
        Event(
            time=100,
            source="audit",
            ref="ctx",
            kind="api-request",
            severity=Severity.INFO,
            summary="get pods",
            entities=(POD,),
        )
    )
    c.add(
        Event(
            time=160,
            source="falco",
            ref="s1",
            kind="shell",
            severity=Severity.HIGH,
            summary="Shell in <b>shop</b> | `rm -rf` [click](http://evil) ![x](y) \x1b[31m",
            entities=(POD,),
            attack=Attack("execution", "T1059"),
            signal=True,
            label="Shell",
            raw_inline={
                "output": "token eyJhbGciOiJIUzI1.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
                "kind": "Secret",
                "data": {"pw": "c2VjcmV0"},
                "note": "```",
            },
        )
    )
    inc_id = next(iter(c.incidents))
    c.attach(
        inc_id,
        Event(
            time=400,
            source="ktriage",
            ref="a1",
            kind="action-isolate",
            severity=Severity.INFO,
            summary="isolated shop/storefront-1",
            entities=(POD,),
            raw_inline={
                "action": "isolate",
                "target": "shop/storefront-1",
                "actor": "kubernetes-admin",
                "result": "ok",
                "containment": [
                    {
                        "aspect": "network",
                        "subject": "pod shop/storefront-1",
                        "state": "isolated",
                        "detail": "no NetworkPolicy allows traffic to or from it",
                    }
                ],
            },
        ),
    )
    c.attach(
        inc_id,
        Event(
            time=420,
            source="ktriage",
            ref="a2",
            kind="action-logs",
            severity=Severity.INFO,
            summary="dumped logs",
            entities=(POD,),
            raw_inline={
                "action": "logs",
                "target": "shop/storefront-1",
                "actor": "kubernetes-admin",
                "result": "ok",
                "files": [{"path": "evidence/app.log", "sha256": "ab" * 32, "bytes": 10}],
            },
        ),
    )
    return c, inc_id


def test_markdown_tells_the_story_and_escapes_untrusted_text() -> None:
    c, inc_id = _incident()
    inc = c.incidents[inc_id]
    md = render_markdown(inc, c.events_of(inc_id))
    assert md.startswith(f"# {inc.id}: Shell in shop/storefront-1")
    assert "| Time to detect | 1m 00s (first event to first signal) |" in md
    assert (
        "| Time to contain | 4m 00s (first signal until every pod is isolated or gone "
        "and every identity that acted is revoked) |"
    ) in md
    assert "## Actions taken" in md and "kubernetes-admin" in md
    assert "evidence/app.log" in md and "ab" * 32 in md
    # No live HTML, links, images or escape bytes from the attacker's text: it is in a
    # code span, whole, readable as plain text (no backslashes, no entities).
    assert_inert(md)
    hostile = "Shell in <b>shop</b> \\| `rm -rf` [click](http://evil) ![x](y) \\x1b[31m"
    assert f"**``{hostile}``**" in md
    assert "\x1b" not in md and "&lt;" not in md and ":\\/\\/" not in md
    # Raw records are redacted, and a fence cannot be closed by the content.
    assert "c2VjcmV0" not in md and "eyJzdWIiOiJ4In0" not in md
    assert "````json" in md


def test_time_to_contain_needs_a_checked_isolation_not_an_ok() -> None:
    c, inc_id = _incident()
    events = c.events_of(inc_id)
    assert time_to_contain(c.incidents[inc_id], events) == 240.0
    # An isolate recorded "ok" without a checked fact (an older record) is not
    # containment: the claim was never verified.
    del events[2].raw_inline["containment"]
    assert time_to_contain(c.incidents[inc_id], events) is None
    md = render_markdown(c.incidents[inc_id], events)
    assert "not contained yet (open: pod shop/storefront-1 isolation not verified)" in md


def test_snapshot_file_is_private(tmp_path: Path) -> None:
    c, inc_id = _incident()
    path = write_snapshot(tmp_path / "snaps", c.incidents[inc_id], c.events_of(inc_id))
    assert path.name == f"{inc_id}.md"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "## Timeline" in path.read_text()


def test_md_escape_keeps_plain_text_and_puts_the_rest_in_code_spans() -> None:
    assert md_escape("shop/web-1 (10.0.0.1)") == "shop/web-1 (10.0.0.1)"
    assert md_escape("a|b") == "`a|b`"
    assert md_escape("a|b", cell=True) == "`a\\|b`"
    assert md_escape("<script>") == "`<script>`"
    assert md_escape("line\nbreak") == "`line\\nbreak`"
    assert md_escape("see http://x/y") == "`see http://x/y`"
    assert md_escape("see www.x.org") == "`see www.x.org`"
    assert md_escape("snake_case") == "`snake_case`"
    assert md_escape("") == ""


def test_a_planted_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    c, inc_id = _incident()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    snaps = tmp_path / "a" / "b"
    snaps.mkdir(parents=True)
    (snaps / f"{inc_id}.md").symlink_to(victim)
    path = write_snapshot(snaps, c.incidents[inc_id], c.events_of(inc_id))
    assert victim.read_text() == "keep me"
    assert not path.is_symlink() and "## Timeline" in path.read_text()


def test_missing_parent_directories_are_private(tmp_path: Path) -> None:
    c, inc_id = _incident()
    write_snapshot(tmp_path / "p1" / "p2" / "p3", c.incidents[inc_id], c.events_of(inc_id))
    for d in ("p1", "p1/p2", "p1/p2/p3"):
        assert stat.S_IMODE((tmp_path / d).stat().st_mode) == 0o700


def test_long_plain_lists_are_shortened_in_the_appendix() -> None:
    from ktriage.core.snapshot import _compact

    caps = [f"CAP_{i}" for i in range(38)]
    out = _compact({"process": {"cap": {"permitted": caps}}, "args": [{"a": 1}] * 20})
    assert out["process"]["cap"]["permitted"] == [*caps[:8], "… 30 more"]
    assert len(out["args"]) == 20  # lists of objects are kept whole


def test_entities_are_also_listed_verbatim_for_copying() -> None:
    """Escaped in Markdown prose, an IP or a URL-like name must still be copyable."""
    from ktriage.core.model import EntityKind, Incident, Severity, entity
    from ktriage.core.snapshot import render_markdown

    ents = (
        entity(EntityKind.IP, "", "203.0.113.42"),
        entity(EntityKind.IMAGE, "", "evil.example/x_y:1.0"),
        entity(EntityKind.POD, "shop", "web`1"),
    )
    inc = Incident(
        id="INC-1",
        severity=Severity.HIGH,
        title="t",
        first_seen=0.0,
        last_seen=1.0,
        first_signal=0.0,
        tactics=(),
        entities=ents,
    )
    text = render_markdown(inc, [])
    block = text.split("Copyable:\n\n", 1)[1].split("\n## ", 1)[0]
    assert block.startswith("```text\n")
    assert "IP  203.0.113.42\nImage  evil.example/x_y:1.0\nPod  shop/web`1\n```" in block
    # The prose list above holds it in a code span.
    assert "- Image: `evil.example/x_y:1.0`" in text

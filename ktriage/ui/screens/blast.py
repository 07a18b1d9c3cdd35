"""The Blast radius of an incident: what its identities and pods can do next.

Computed on demand from the live cluster (read only) in a worker thread, so the
UI keeps running; "computing…" shows until the answer is there. `r` computes
again (the reader reuses its SelfSubjectRulesReviews while RBAC is unchanged),
`s` saves the result as Markdown next to the snapshots, `esc` closes.
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from ktriage.core import blast
from ktriage.core.model import Incident
from ktriage.core.snapshot import write_private
from ktriage.core.text import shown
from ktriage.ui.format import in_cluster_title
from ktriage.ui.readers import cached_reader
from ktriage.ui.screens.dialog import TextBoxScreen

if TYPE_CHECKING:
    from ktriage.blastread import BlastReader

# One reader per app: its cache of reviews outlives the screen.
# With several clusters, one per cluster (by name; "" with one cluster).
_READERS: weakref.WeakKeyDictionary[Any, dict[str, BlastReader]] = weakref.WeakKeyDictionary()

HEADINGS = ("PATHS", "IDENTITY", "POD", "NOT SEEN")


def reader_for(app: Any, cluster: str = "") -> BlastReader | None:
    """The app's reader (of the incident's cluster when several are watched), made on
    first use; None without a live cluster (replay)."""
    return cached_reader(_READERS, app, cluster, _new_reader)


def _new_reader(factory: Callable[[], Any]) -> BlastReader:
    from ktriage.blastread import BlastReader

    return BlastReader(factory)


def styled(lines: list[str]) -> Text:
    """The rendered lines as one Text: plain text, styled by position, never markup."""
    text = Text()
    for line in lines:
        style = ""
        if line.startswith(HEADINGS):
            style = "bold"
        elif line.lstrip().startswith("!!"):
            style = "bold red"
        elif line.lstrip().startswith("! "):
            style = "yellow"
        elif line.lstrip().startswith(("by ", "why: ")):
            style = "dim"
        elif _reach_warning(line):
            style = "yellow"
        text.append(line + "\n", style=style)
    return text


def _reach_warning(line: str) -> bool:
    """A reachability line that is not "isolated": open, let through, or maybe not enforced."""
    body = line.lstrip()
    if not body.startswith(("ingress: ", "egress: ")):
        return False
    return not body.split(": ", 1)[1].startswith("isolated by ") or "may not" in body


class BlastScreen(TextBoxScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", key_display="esc"),
        Binding("r", "recompute", "Recompute"),
        Binding("s", "save", "Save"),
    ]
    DEFAULT_CSS = """
    BlastScreen > VerticalScroll {
        width: 95%;
        height: 90%;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        incident: Incident,
        reader: BlastReader,
        snapshot_dir: Path | None = None,
        *,
        cluster: str = "",
    ) -> None:
        super().__init__()
        self.cluster = cluster  # named in the title when several clusters are watched
        self.incident = incident
        self.reader = reader
        self.snapshot_dir = snapshot_dir
        self.identities, self.pods = blast.targets_of(incident)
        self.result: blast.BlastResult | None = None
        self.computing = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="blast-scroll") as scroll:
            title = f"Blast radius · {self.incident.id}" + in_cluster_title(self.cluster)
            scroll.border_title = Text(title)
            scroll.border_subtitle = Text("esc closes · r recomputes · s saves")
            yield Static(Text("computing…"), id="blast-body")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self.action_recompute()

    def action_recompute(self) -> None:
        if self.computing:
            return
        if not self.identities and not self.pods:
            self._show_text("This incident names no pod, service account or user.")
            return
        self.computing = True
        if self.result is not None:
            self.query_one(VerticalScroll).border_subtitle = Text("computing…")
        self.run_worker(self._compute, thread=True, group="blast", exit_on_error=False)

    def _compute(self) -> None:
        try:
            result = self.reader.compute(self.identities, self.pods)
        except Exception as exc:  # the cluster's failure is shown, never raised into the UI
            self._from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self._from_thread(self._show, result)

    def _from_thread(self, callback: Any, arg: Any) -> None:
        try:
            self.app.call_from_thread(callback, arg)
        except RuntimeError:
            pass  # the app closed while the cluster was being read: nobody to tell

    def _failed(self, why: str) -> None:
        self.computing = False
        if self.result is not None:
            self.query_one(VerticalScroll).border_subtitle = Text(
                "esc closes · r recomputes · s saves"
            )
            self.notify(shown(f"Blast radius not refreshed: {why}"), markup=False)
            return
        self._show_text(f"Could not compute the blast radius: {shown(why)}")

    def _show(self, result: blast.BlastResult) -> None:
        self.computing = False
        self.result = result
        remember = getattr(self.app, "remember_blast", None)
        if remember is not None:  # the incident's snapshot includes it from now on
            remember(self.incident.id, result)
        lines = blast.render_lines(result)
        lines.append("")
        lines.append("legend: !! cluster-wide or in kube-system · ! dangerous · by: what grants it")
        lines.append(f"computed in {result.elapsed:.2f} s from the live cluster (read only)")
        if self.is_mounted:
            self.query_one("#blast-body", Static).update(styled(lines))
            self.query_one(VerticalScroll).border_subtitle = Text(
                "esc closes · r recomputes · s saves"
            )

    def _show_text(self, message: str) -> None:
        if self.is_mounted:
            self.query_one("#blast-body", Static).update(Text(message))

    def action_save(self) -> None:
        if self.result is None or self.snapshot_dir is None:
            self.notify("Nothing to save yet.", severity="warning")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", self.incident.id)
        path = Path(self.snapshot_dir) / f"{safe_id}-blast-{stamp}.md"
        try:
            write_private(path, blast.render_markdown(self.result))
        except OSError as exc:
            self.notify(shown(f"Not saved: {exc}"), severity="error", markup=False)
            return
        self.notify(shown(f"Blast radius saved: {path}"), timeout=8, markup=False)


def open_blast(app: Any, incident: Incident | None) -> None:
    """Push the Blast radius screen for an incident (the `b` key, the palette)."""
    if incident is None:
        app.notify("No incident selected.", severity="warning")
        return
    cluster = getattr(incident, "cluster", "") or ""
    reader = reader_for(app, cluster)
    if reader is None:
        app.notify("Blast radius needs a live cluster.", severity="warning")
        return
    app.push_screen(
        BlastScreen(incident, reader, getattr(app, "snapshot_dir", None), cluster=cluster)
    )

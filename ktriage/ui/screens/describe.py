"""`d`: one live object as YAML, redacted, with its events, in a scrollable screen.

Read in a worker thread (the UI keeps answering). The YAML is the object as
`kubectl get -o yaml` shows it, without managedFields, with Secret data, tokens,
Authorization headers and secret-looking env values replaced by `<redacted>`
(`core.redact`); every string is shown as text (no markup, control characters
escaped). A pod's describe offers `L` for its log.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from ktriage.core.text import shown
from ktriage.resourceread import Description, ResourceReader, When
from ktriage.ui.format import age, in_cluster_title
from ktriage.ui.screens.dialog import END_KEYS, LINE_KEYS, ScrollKeys
from ktriage.ui.widgets.key_hints import KeyHints


def description_text(desc: Description, now: float) -> Text:
    """The whole screen's body as plain Text, styled by position only."""
    out = Text()
    for problem in desc.problems:
        out.append(f"! {shown(problem)}\n", style="bold yellow")
    if desc.problems:
        out.append("\n")
    if desc.yaml:
        out.append(shown(desc.yaml, keep_newlines=True))
        out.append("\n")
    out.append("Events", style="bold")
    out.append(" (newest first)\n" if desc.events else "\n", style="dim")
    if not desc.events:
        out.append("  <none>\n", style="dim")
    for row in desc.events:
        _ns, when, kind, reason, _obj, count, message = row.cells
        ago = age(now - when.t) if isinstance(when, When) and when.t is not None else "?"
        style = "yellow" if kind == "Warning" else ""
        # How many times, as kubectl counts it (x4).
        out.append(
            f"  {ago:>4} {shown(count):>5}  {shown(kind):<8} {shown(reason):<20} ", style=style
        )
        out.append(f"{shown(message)}\n")
    return out


class DescribeScreen(Screen[None], ScrollKeys):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", key_display="esc"),
        Binding("r", "reload", "Reload"),
        Binding("L", "logs", "View logs", key_display="L"),
        # Reached when the object is not a pod (the key above is then disabled): says so.
        Binding("L", "no_logs", "View logs", key_display="L", show=False),
        *LINE_KEYS,
        *END_KEYS,
    ]
    DEFAULT_CSS = """
    DescribeScreen > VerticalScroll { height: 1fr; border: round $primary; padding: 0 1; }
    """

    def __init__(
        self, reader: ResourceReader, kind: str, namespace: str, name: str, *, cluster: str = ""
    ) -> None:
        super().__init__()
        self.cluster = cluster  # named in the title when several clusters are watched
        self.reader = reader
        self.kind = kind
        self.namespace = namespace
        self.name_ = name
        self.description: Description | None = None
        self.reading = False

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name_}" if self.namespace else self.name_

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="describe-scroll") as scroll:
            # Text titles: a str would be parsed as markup, and names are untrusted.
            title = shown(f"Describe {self.kind} {self.where}") + in_cluster_title(self.cluster)
            scroll.border_title = Text(title)
            scroll.border_subtitle = Text("live, read only · secrets redacted")
            yield Static(Text("reading…"), id="describe-body")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self.action_reload()

    def action_reload(self) -> None:
        if self.reading:
            return
        self.reading = True
        self.run_worker(self._read, thread=True, group="describe", exit_on_error=False)

    def _read(self) -> None:
        try:
            desc = self.reader.describe(self.kind, self.namespace, self.name_)
        except Exception as exc:  # said on the screen, never raised into the UI
            desc = Description(self.kind, self.namespace, self.name_)
            desc.problems.append(f"{type(exc).__name__}: {exc}")
        try:
            self.app.call_from_thread(self._show, desc)
        except RuntimeError:
            pass  # the app closed meanwhile

    def _show(self, desc: Description) -> None:
        self.reading = False
        self.description = desc
        if self.is_mounted:
            now = self.app.now()  # type: ignore[attr-defined]
            self.query_one("#describe-body", Static).update(description_text(desc, now))

    @property
    def body_text(self) -> str:
        return description_text(self.description, 0).plain if self.description else ""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`L` is offered on a pod only; elsewhere the key says why."""
        if action == "logs":
            return self.kind == "Pod"
        if action == "no_logs":
            return self.kind != "Pod"
        return True

    def action_no_logs(self) -> None:
        self.notify(
            shown(f"L shows a pod's log: {self.kind} {self.where} is not a pod."),
            timeout=4,
            markup=False,
        )

    def action_logs(self) -> None:
        if self.kind != "Pod":
            self.action_no_logs()
            return
        from ktriage.ui.screens.pod_logs import PodLogsScreen

        self.app.push_screen(
            PodLogsScreen(self.reader, self.namespace, self.name_, cluster=self.cluster)
        )

    def action_close(self) -> None:
        self.app.pop_screen()

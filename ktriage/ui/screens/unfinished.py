"""At start-up: actions an earlier run was killed in the middle of.

Each is shown with what of it is in place now (read back from the cluster:
"done: create NetworkPolicy shop/ktriage-quarantine-web; not done: patch pod
shop/web (an orphan policy: it selects no pod)"). For the highlighted one:
`r` rolls it back (removes what is in place), `c` completes it (finishes the
plan), `l` leaves it (it stays listed, and quitting names it). Both paths are
journaled like any action. Names come from the journal and the cluster: shown
as plain text, never markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ktriage.actions.base import ActionError
from ktriage.actions.service import COMPLETE, ROLLBACK
from ktriage.actions.unfinished import Unfinished
from ktriage.core.text import shown
from ktriage.ui.format import cluster_label
from ktriage.ui.screens.dialog import DialogScreen

if TYPE_CHECKING:
    from ktriage.actions.service import ActionService


def item_text(item: Unfinished, state: str = "", cluster: str = "") -> Text:
    out = Text()
    if cluster:  # with several clusters, each action names the cluster it is in
        out.append(f"[{cluster_label(cluster)}] ", "bold")
    out.append(shown(item.title()), "bold")
    out.append("\n  " + shown(item.summary()))
    if state:
        out.append("\n  → " + shown(state), "italic")
    return out


class UnfinishedScreen(DialogScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "resolve('rollback')", "Roll back"),
        Binding("c", "resolve('complete')", "Complete"),
        Binding("l", "leave", "Leave"),
        Binding("escape", "close", "Close"),
    ]
    DEFAULT_CSS = """
    UnfinishedScreen > .dialog { width: 110; }
    UnfinishedScreen OptionList { height: auto; max-height: 70vh; }
    UnfinishedScreen #unfinished-status { height: auto; }
    """

    def __init__(
        self, service: ActionService, items: list[Unfinished], *, cluster: str = ""
    ) -> None:
        super().__init__()
        self.service = service
        self.cluster = cluster  # "" with one cluster
        self.items = {item.uid: item for item in items}
        self.states: dict[str, str] = {}
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -error") as box:
            where = f"cluster {cluster_label(self.cluster)}" if self.cluster else "this cluster"
            box.border_title = Text(
                f"Cut short by an earlier run: {len(self.items)} action(s) on {where}"
            )
            box.border_subtitle = Text("r roll back · c complete · l leave · esc close")
            yield Static(
                Text(
                    "ktriage stopped in the middle of these actions. What is in place now "
                    "was read back from the cluster.",
                    "italic",
                ),
                id="unfinished-intro",
            )
            yield OptionList(
                *(
                    Option(item_text(item, cluster=self.cluster), id=uid)
                    for uid, item in self.items.items()
                ),
                id="unfinished-list",
            )
            yield Static(Text(""), id="unfinished-status")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def _selected(self) -> str | None:
        option_list = self.query_one(OptionList)
        option = option_list.highlighted_option
        if option is None or option.id is None or option.id in self.states:
            return None
        return option.id

    def _show(self, uid: str, state: str) -> None:
        self.states[uid] = state
        option_list = self.query_one(OptionList)
        option_list.replace_option_prompt(
            uid, item_text(self.items[uid], state, cluster=self.cluster)
        )
        option_list.disable_option(uid)
        pending = [u for u in self.items if u not in self.states]
        if pending:
            option_list.highlighted = option_list.get_option_index(pending[0])
        self.query_one("#unfinished-status", Static).update(
            Text(f"{len(pending)} left to decide." if pending else "All decided: esc closes.")
        )

    def action_leave(self) -> None:
        uid = self._selected()
        if uid is not None and not self.busy:
            self._show(uid, "left as it is (quitting names it)")

    def action_resolve(self, how: str) -> None:
        uid = self._selected()
        if uid is None or self.busy or how not in (ROLLBACK, COMPLETE):
            return
        self.busy = True
        verb = "rolling back" if how == ROLLBACK else "completing"
        self.query_one("#unfinished-status", Static).update(Text(f"{verb}…"))
        self.run_worker(self._resolve(uid, how), group="unfinished", exit_on_error=False)

    async def _resolve(self, uid: str, how: str) -> None:
        try:
            outcome = await self.service.resolve_unfinished(uid, how)
            state = f"{how}: {outcome.result}: {outcome.message}"
        except ActionError as error:
            state = f"{how} not done: {error.message}"
        except Exception as exc:  # never a traceback: say it and keep the dialog
            state = f"{how} not done: unexpected error: {type(exc).__name__}: {exc}"
        finally:
            self.busy = False
        self._show(uid, state)

    def action_close(self) -> None:
        if self.busy:
            self.notify("Working: wait for it to finish.", severity="warning", markup=False)
            return
        self.dismiss(None)

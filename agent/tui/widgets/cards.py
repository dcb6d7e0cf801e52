"""Tool cards: one card per tool call, with a live status and the result when done.

A card shows the tool, its arguments in one line and a colored status (queued,
waiting for approval, running with the seconds ticking, done, failed, refused by
scope). When the tool finishes, the result is rendered by
:func:`~agent.tui.widgets.results.result_view`. Enter or space collapses the body;
``j`` swaps the view for the raw JSON of the typed result.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Click
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from agent.tui.widgets.results import result_view
from tools.models import AnyResult, Status

CardStatus = Literal[
    "queued", "approval", "running", "done", "failed", "refused", "rejected"
]

STATUS_LABEL: dict[CardStatus, str] = {
    "queued": "queued",
    "approval": "waiting for approval",
    "running": "running",
    "done": "done",
    "failed": "failed",
    "refused": "refused by scope",
    "rejected": "rejected",
}
ARGS_WIDTH = 60


def compact_args(args: dict[str, Any], width: int = ARGS_WIDTH) -> str:
    """``key=value`` pairs on one line, clipped to ``width`` characters."""
    text = " ".join(
        f"{key}={value}" for key, value in args.items() if value is not None
    )
    return text if len(text) <= width else text[: width - 1] + "…"


class ToolCard(Widget, can_focus=True):
    """One tool call: header with tool, arguments and status; the result below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,space", "collapse", "Collapse", show=True),
        Binding("j", "toggle_json", "Raw JSON", show=True),
    ]

    class Selected(Message):
        """The card was clicked."""

        def __init__(self, card: ToolCard) -> None:
            super().__init__()
            self.card = card

    def __init__(
        self, call_id: str, name: str, args: dict[str, Any], *, id: str | None = None
    ) -> None:
        super().__init__(id=id, classes="-queued")
        self.call_id = call_id
        self.tool_name = name
        self.args = dict(args)
        self.status: CardStatus = "queued"
        self.result: AnyResult | None = None
        self.text = ""
        self._started: float | None = None
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="card-header"):
            yield Static(self._title(), classes="card-title", markup=False)
            yield Static(self._status_text(), classes="card-status")
        yield Vertical(classes="card-body")
        yield Static("", classes="card-json", markup=False)

    # --- public API

    def set_status(self, status: CardStatus) -> None:
        """Show ``status``; "running" starts the elapsed-seconds ticker."""
        self.remove_class(f"-{self.status}")
        self.status = status
        self.add_class(f"-{status}")
        if status == "running":
            self._start_ticker()
        else:
            self._stop_ticker()
        self._refresh_status()

    def set_args(self, args: dict[str, Any]) -> None:
        """Show the arguments the call really runs with (after an edit)."""
        self.args = dict(args)
        if self.is_mounted:
            self.query_one(".card-title", Static).update(self._title())

    def show_result(self, result: AnyResult | None, text: str) -> None:
        """Render a finished call: done when the result is ok, failed otherwise.

        A result refused by scope (status ``out-of-scope``) shows as refused.
        """
        self.result, self.text = result, text
        self.set_status(_finished_status(result))
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        if result is not None:
            body.mount(result_view(result))
        else:
            body.mount(Static(Text(text or "no result"), classes="card-message"))
        self.query_one(".card-json", Static).update(self._json())

    def show_rejected(self, reason: str) -> None:
        """Mark the call rejected at approval; it never ran."""
        self.text = f"rejected: {reason}"
        self.set_status("rejected")
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        body.mount(Static(Text(reason, style="yellow"), classes="card-message"))

    def show_refused(self, reason: str) -> None:
        """Mark the call refused by scope; nothing was sent to the target."""
        self.set_status("refused")
        body = self.query_one(".card-body", Vertical)
        body.remove_children()
        body.mount(Static(Text(reason, style="red"), classes="card-message"))

    @property
    def elapsed(self) -> float:
        """Seconds since the card started running (0 before that)."""
        return 0.0 if self._started is None else time.monotonic() - self._started

    # --- actions and events

    def action_collapse(self) -> None:
        self.toggle_class("-collapsed")
        self._refresh_status()

    def action_toggle_json(self) -> None:
        self.toggle_class("-json")

    def on_click(self, event: Click) -> None:
        self.post_message(self.Selected(self))

    # --- rendering

    def _title(self) -> Text:
        title = Text(self.tool_name, style="bold")
        args = compact_args(self.args)
        if args:
            title.append(f"  {args}", style="dim")
        return title

    def _status_text(self) -> Text:
        label = STATUS_LABEL[self.status]
        if self.status == "running":
            label += f" {int(self.elapsed)}s"
        elif self.result is not None and self.status in ("done", "failed"):
            label += f" {self.result.duration_ms / 1000:.1f}s"
        marker = "▸ " if self.has_class("-collapsed") else ""
        return Text(marker + label)

    def _refresh_status(self) -> None:
        if self.is_mounted:
            self.query_one(".card-status", Static).update(self._status_text())

    def _json(self) -> str:
        if self.result is None:
            return json.dumps({"text": self.text})
        return self.result.model_dump_json(indent=2)

    def _start_ticker(self) -> None:
        self._started = time.monotonic()
        if self._ticker is None:
            self._ticker = self.set_interval(1.0, self._refresh_status)

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None


def _finished_status(result: AnyResult | None) -> CardStatus:
    if result is None:
        return "failed"
    if result.status is Status.OUT_OF_SCOPE:
        return "refused"
    return "done" if result.status is Status.OK else "failed"

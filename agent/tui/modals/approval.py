"""The approval modal shown before any active tool runs.

It shows exactly what will run against what: the tool, its profile and ports, the
target and the address it resolved to (the caller resolves it with
:meth:`tools.scope.Scope.check_host`; this screen does no DNS). Keys: ``a`` approve,
``e`` edit the JSON arguments (for example to narrow the ports), ``r`` or Escape
reject, ``s`` toggles "approve for this session" for this tool and target. The
screen is dismissed with an :class:`ApprovalOutcome`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static, TextArea

from agent.loop import ApprovalDecision, ApprovalRequest
from agent.toolset.schemas import FullCheckArgs, NmapScanArgs, PqCheckArgs, TlsCheckArgs

ARG_SCHEMAS: dict[str, type[BaseModel]] = {
    "tls_check": TlsCheckArgs,
    "pq_check": PqCheckArgs,
    "nmap_scan": NmapScanArgs,
    "full_check": FullCheckArgs,
}
DEFAULT_PORTS = {"nmap_scan": "the profile's ports", "full_check": "nmap's top 1000"}


@dataclass(frozen=True)
class ApprovalOutcome:
    """The answer; ``remember`` approves this tool and target for the session."""

    decision: ApprovalDecision
    remember: bool


class ApprovalScreen(ModalScreen[ApprovalOutcome]):
    """Approve, edit or reject one active tool call."""

    CSS_PATH = Path(__file__).with_name("approval.tcss")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve"),
        Binding("e", "edit", "Edit"),
        Binding("r", "reject", "Reject"),
        Binding("escape", "reject", "Reject", show=False),
        Binding("s", "remember", "This session"),
    ]

    def __init__(
        self, request: ApprovalRequest, address: str | None, scope_rule: str = ""
    ) -> None:
        super().__init__()
        self.request = request
        self.address = address
        self.scope_rule = scope_rule

    def compose(self) -> ComposeResult:
        with Vertical(id="approval"):
            yield Label(Text(f"Run {self.request.name}?", style="bold"), id="question")
            yield Static(self._summary(), id="summary")
            yield TextArea(self._args_json(), language=None, id="args-editor")
            yield Label("", id="args-error", classes="-empty")
            yield Checkbox("approve for this session (s)", id="remember")
            with Horizontal(id="buttons"):
                yield Button("Approve (a)", variant="success", id="approve")
                yield Button("Edit (e)", id="edit")
                yield Button("Reject (r)", variant="error", id="reject")

    def on_mount(self) -> None:
        self.query_one("#approve", Button).focus()

    # --- actions

    def action_approve(self) -> None:
        decision = self._decision()
        if decision is not None:
            remember = self.query_one("#remember", Checkbox).value
            self.dismiss(ApprovalOutcome(decision, remember))

    def action_edit(self) -> None:
        self.add_class("-editing")
        self.query_one("#args-editor", TextArea).focus()

    def action_reject(self) -> None:
        if self.query_one("#args-editor", TextArea).has_focus:
            self.query_one("#approve", Button).focus()  # Escape leaves the editor
            return
        decision = ApprovalDecision.reject("rejected by the user")
        self.dismiss(ApprovalOutcome(decision, remember=False))

    def action_remember(self) -> None:
        self.query_one("#remember", Checkbox).toggle()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        actions = {"approve": self.action_approve, "edit": self.action_edit}
        actions.get(event.button.id or "", self.action_reject)()

    # --- the decision

    def _decision(self) -> ApprovalDecision | None:
        """Approve, or edit when the arguments were changed; None when they are bad."""
        if not self.has_class("-editing"):
            return ApprovalDecision.approve()
        try:
            args = self._edited_args()
        except ValueError as exc:
            error = self.query_one("#args-error", Label)
            error.update(Text(str(exc), style="red"))
            error.remove_class("-empty")
            self.query_one("#args-editor", TextArea).focus()
            return None
        if args == self.request.args:
            return ApprovalDecision.approve()
        return ApprovalDecision.edit(args)

    def _edited_args(self) -> dict[str, Any]:
        """The editor's JSON, checked against the tool's argument schema."""
        text = self.query_one("#args-editor", TextArea).text
        try:
            args = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(args, dict):
            raise ValueError("the arguments must be a JSON object")
        schema = ARG_SCHEMAS.get(self.request.name)
        if schema is not None:
            try:
                schema.model_validate(args)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "arguments"
                raise ValueError(f"{where}: {first['msg']}") from exc
        return args

    # --- rendering

    def _summary(self) -> Table:
        args = self.request.args
        table = Table(show_header=False, box=None, padding=(0, 1))
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_row("tool", Text(self.request.name))
        table.add_row("target", Text(str(args.get("target", "?"))))
        address = self.address or "not resolved"
        if self.scope_rule:
            address += f"  (in scope: {self.scope_rule})"
        table.add_row("address", Text(address))
        if "profile" in args or self.request.name == "nmap_scan":
            table.add_row("profile", Text(str(args.get("profile") or "quick")))
        if self.request.name in DEFAULT_PORTS:
            ports = args.get("ports") or DEFAULT_PORTS[self.request.name]
            table.add_row("ports", Text(str(ports)))
        what = self.request.description.strip().splitlines()
        if what:
            table.add_row("what", Text(what[0]))  # the rest repeats tool and args
        return table

    def _args_json(self) -> str:
        return json.dumps(self.request.args, indent=2)

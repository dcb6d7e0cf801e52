"""The findings panel: every finding of the session, worst first, one row per target.

Findings are deduplicated by (target, finding id): a later check of the same target
replaces the row and points it at the newer card. Selecting a row posts
:class:`FindingsPanel.FindingSelected` with the id of the card that produced it, so
the app can scroll there.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable

from agent.styles import SEVERITY_STYLE
from tools.models import Finding

COLUMNS = ("severity", "id", "target", "title")


@dataclass(frozen=True)
class SessionFinding:
    """A finding with where it was found and the card that shows it."""

    target: str
    finding: Finding
    card_id: str


class FindingsPanel(Widget):
    """A table of the session's findings."""

    class FindingSelected(Message):
        """A row was selected; ``card_id`` is the card that produced the finding."""

        def __init__(self, card_id: str, item: SessionFinding) -> None:
            super().__init__()
            self.card_id = card_id
            self.item = item

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._items: dict[tuple[str, str], SessionFinding] = {}
        self.border_title = "Findings"

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table

    @property
    def findings(self) -> list[SessionFinding]:
        """The session's findings, critical first, then by target and id."""
        return sorted(
            self._items.values(),
            key=lambda s: (-s.finding.severity.rank, s.target, s.finding.id),
        )

    def add(self, target: str, findings: list[Finding], card_id: str) -> None:
        """Record ``findings`` of ``target``, shown on the card ``card_id``."""
        for item in findings:
            self._items[(target, item.id)] = SessionFinding(target, item, card_id)
        self._refill()

    def clear(self) -> None:
        """Forget every finding (a new session)."""
        self._items.clear()
        self._refill()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        items = self.findings
        if 0 <= event.cursor_row < len(items):
            item = items[event.cursor_row]
            self.post_message(self.FindingSelected(item.card_id, item))

    def _refill(self) -> None:
        self.border_subtitle = str(len(self._items))
        if not self.is_mounted:
            return
        table: DataTable[Text] = self.query_one(DataTable)
        table.clear()
        for item in self.findings:
            finding = item.finding
            table.add_row(
                Text(finding.severity.value, style=SEVERITY_STYLE[finding.severity]),
                Text(finding.id),
                Text(item.target),
                Text(finding.title),
            )

    def on_mount(self) -> None:
        self._refill()

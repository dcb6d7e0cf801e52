"""Widgets of the TUI: tool cards, result views and the findings panel.

The app adds :data:`STYLESHEET` to its ``CSS_PATH``: widgets cannot carry their own
stylesheet file.
"""

from pathlib import Path

from agent.tui.widgets.cards import CardStatus, ToolCard, compact_args
from agent.tui.widgets.findings import FindingsPanel, SessionFinding
from agent.tui.widgets.results import result_view

STYLESHEET = Path(__file__).with_name("widgets.tcss")

__all__ = [
    "STYLESHEET",
    "CardStatus",
    "FindingsPanel",
    "SessionFinding",
    "ToolCard",
    "compact_args",
    "result_view",
]

"""Modal screens of the TUI."""

from agent.tui.modals.approval import ApprovalOutcome, ApprovalScreen

__all__ = ["ApprovalOutcome", "ApprovalScreen"]

"""Rich style names shared by the command line and the terminal app."""

from __future__ import annotations

from tools.models import Posture, Severity

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
POSTURE_STYLE = {
    Posture.QUANTUM_SAFE: "bold green",
    Posture.PARTIAL: "yellow",
    Posture.VULNERABLE: "bold red",
    Posture.UNKNOWN: "dim",
}
OUTCOME_STYLE = {"supported": "green", "not-supported": "dim", "error": "red"}

"""Triage: a short explanation attached to each alert (what changed, why, the fix).

:class:`PlainTriage` needs no model: it writes a deterministic summary from the
change, the finding catalogue and the post-quantum remediation lines.
:class:`ModelTriage` asks the local model through :class:`~agent.loop.Assistant`
(same tools, same scope; active tools are refused unless the config allows them)
and falls back to the plain text on any error, empty answer or timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from agent.daemon.changes_base import Change
from agent.loop import Approver, Assistant, approve_all, reject_all
from agent.runtime.prompt_text import fill
from tools.findings import CATALOG
from tools.verdict import SSH_KEX_FIX, TLS_KEX_FIXES

log = logging.getLogger(__name__)

MAX_CHARS = 1200
NO_ACTIVE = "alert triage runs no active scan unless the daemon config allows it"

_CAUSES = {
    "finding-opened": "the server's configuration or certificate changed",
    "finding-resolved": "the problem was fixed",
    "cert-threshold": "the certificate is getting close to its expiry date",
    "pq-regression": "a server or library change dropped post-quantum key exchange",
    "pq-improved": "the server now offers stronger post-quantum key exchange",
    "port-opened": "a new service started or a firewall rule was relaxed",
    "port-closed": "a service stopped or a firewall rule now blocks it",
    "unreachable": "the service is down, or a network or firewall change blocks it",
    "reachable": "the service is answering again",
}
_PORT_FIX = "Close the port or firewall it unless the service is meant to be exposed."
_REACH_FIX = "Check that the service runs and that the path to it is open."


class Triage(Protocol):
    """Explains one change for the people who receive the alert."""

    async def explain(self, change: Change, result_text: str) -> str: ...


class PlainTriage:
    """A deterministic summary without a model."""

    async def explain(self, change: Change, result_text: str) -> str:
        return plain_text(change)


def plain_text(change: Change) -> str:
    """What changed, the likely cause and the fix, in three sentences."""
    cause = _CAUSES.get(change.kind, "the target's configuration changed")
    where = "" if change.target in change.title else f" on {change.target}"
    text = (
        f"What changed: {change.title}{where} ({change.check}). Likely cause: {cause}."
    )
    fix = remediation(change)
    return f"{text} Fix: {fix}" if fix and not change.resolved else text


def remediation(change: Change) -> str:
    """The catalogue's remediation for the change's condition, if one applies."""
    if change.extra.get("remediation"):
        return change.extra["remediation"]
    prefix, _, rest = change.key.partition(":")
    if prefix == "finding" and rest in CATALOG:
        return CATALOG[rest].remediation
    if change.kind == "cert-threshold":
        return CATALOG["cert-expiring"].remediation
    if change.kind == "pq-regression":
        ssh = "ssh" in change.key or change.check == "ssh"
        return SSH_KEX_FIX if ssh else TLS_KEX_FIXES[0]
    if change.kind == "port-opened":
        return _PORT_FIX
    if change.kind == "unreachable":
        return _REACH_FIX
    return ""


class ModelTriage:
    """Asks the local model; any failure falls back to :class:`PlainTriage`."""

    def __init__(self, assistant: Assistant, timeout: float = 90.0) -> None:
        self.assistant = assistant
        self.timeout = timeout
        self._asked = 0

    @staticmethod
    def approver(allow_active: bool) -> Approver:
        """The approver to build the triage :class:`Assistant` with."""
        return approve_all if allow_active else reject_all(NO_ACTIVE)

    async def explain(self, change: Change, result_text: str) -> str:
        asking = asyncio.to_thread(self._ask, change, result_text)
        try:
            answer = await asyncio.wait_for(asking, self.timeout)
        except TimeoutError:
            log.warning(
                "model triage of %s %s took too long", change.target, change.key
            )
            answer = ""
        except Exception:  # the model side must never lose an alert
            log.warning("model triage failed for %s %s", change.target, change.key)
            answer = ""
        return answer or plain_text(change)

    def _ask(self, change: Change, result_text: str) -> str:
        self._asked += 1
        result = self.assistant.ask(
            triage_prompt(change, result_text), thread_id=f"triage-{self._asked}"
        )
        if result.limit is not None:
            return ""
        return result.answer.strip()[:MAX_CHARS]


def triage_prompt(change: Change, result_text: str) -> str:
    """The question put to the model for ``change``."""
    return fill(
        "triage.txt",
        target=change.target,
        check=change.check,
        kind=change.kind,
        severity=str(change.severity),
        title=change.title,
        detail=change.detail,
        result=result_text[:4000] or "(not available)",
    )

"""One stream of agent events for every front end (CLI, TUI, daemon).

:meth:`agent.loop.Assistant.ask` reports what happens through one callback taking an
:data:`AgentEvent`. Events are plain frozen dataclasses; tool results travel as the
typed models of :mod:`tools.models`, so front ends render them as they like. Events
may arrive from a worker thread (tools run in LangGraph's thread pool).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tools.models import AnyResult, Finding

LimitKind = Literal["model-calls", "tool-calls", "recursion"]
DecisionKind = Literal["approve", "edit", "reject"]


@dataclass(frozen=True)
class TokenStreamed:
    """A piece of the model's output as it is decoded."""

    kind: Literal["thinking", "answer"]
    text: str


@dataclass(frozen=True)
class ToolStarted:
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ApprovalRequested:
    """An active tool waits for the approver."""

    call_id: str
    name: str
    args: dict[str, Any]
    description: str


@dataclass(frozen=True)
class ApprovalDecided:
    call_id: str
    name: str
    decision: DecisionKind
    args: dict[str, Any]
    reason: str = ""


@dataclass(frozen=True)
class ToolFinished:
    """A tool ran (or failed); ``text`` is what the model was shown."""

    call_id: str
    name: str
    args: dict[str, Any]
    status: str
    text: str
    result: AnyResult | None
    duration_ms: float


@dataclass(frozen=True)
class ScopeRefused:
    """A tool's target was outside scope; nothing was sent to it."""

    call_id: str
    name: str
    target: str
    reason: str


@dataclass(frozen=True)
class LimitReached:
    kind: LimitKind
    message: str


@dataclass(frozen=True)
class AnswerFinished:
    """The final answer of one question."""

    text: str
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Notice:
    """Something the person should know that is not a tool call or an answer."""

    text: str


AgentEvent = (
    Notice
    | TokenStreamed
    | ToolStarted
    | ApprovalRequested
    | ApprovalDecided
    | ToolFinished
    | ScopeRefused
    | LimitReached
    | AnswerFinished
)
OnEvent = Callable[[AgentEvent], None]

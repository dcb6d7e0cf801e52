"""The agent loop: LangChain's ``create_agent`` over a local runtime, with guard rails.

:class:`Assistant` is the one entry point front ends use::

    assistant = Assistant(runtime, options, settings.agent, approver=approve_all)
    result = assistant.ask("Is 127.0.0.1:8443 quantum safe?", on_event=print)

Guard rails, all in code:

- active tools (:data:`~agent.toolset.ACTIVE_TOOLS`) wait for the :class:`Approver`
  (approve, edit the arguments, or reject with a reason) through LangChain's
  human-in-the-loop middleware; a target that scope refuses is not put to the user,
  it goes straight to the runner, which refuses it without sending anything;
- hard limits on model calls and tool calls per question end the run cleanly with a
  message, and an explicit recursion limit bounds the graph;
- a tool that raises becomes an error message to the model, never a crash;
- conversation memory per ``thread_id`` lives in an in-memory checkpointer.

Every step is reported as an :data:`~agent.events.AgentEvent`. ``ask`` calls are
serialised per :class:`Assistant`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    HumanInTheLoopMiddleware,
    InterruptOnConfig,
    ModelCallLimitMiddleware,
    ToolCallLimitMiddleware,
    ToolCallRequest,
    ToolErrorMiddleware,
    hook_config,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.errors import GraphRecursionError
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import BaseModel

from agent.chat_model import RuntimeChatModel
from agent.events import (
    AgentEvent,
    AnswerFinished,
    ApprovalDecided,
    ApprovalRequested,
    LimitKind,
    LimitReached,
    Notice,
    OnEvent,
    ScopeRefused,
    TokenStreamed,
    ToolFinished,
    ToolStarted,
)
from agent.runtime.base import ChatRuntime
from agent.settings import AgentSettings
from agent.toolset import ACTIVE_TOOLS, PASSIVE_TOOLS, build_tools
from agent.toolset.texts import system_prompt, tool_texts
from tools import models, runner
from tools.errors import NetwardenError, ScopeError
from tools.models import AnyResult, Finding, Status
from tools.scope import Scope
from tools.targets import find_targets

log = logging.getLogger(__name__)


# --- approvals ------------------------------------------------------------------


ApprovalRequest = ApprovalRequested
"""An active tool call waiting for a decision: the approver gets the event itself."""


@dataclass(frozen=True)
class ApprovalDecision:
    kind: Literal["approve", "edit", "reject"]
    args: dict[str, Any] | None = None
    reason: str = ""

    @classmethod
    def approve(cls) -> ApprovalDecision:
        return cls("approve")

    @classmethod
    def edit(cls, args: dict[str, Any]) -> ApprovalDecision:
        """Run the same tool with ``args`` instead (e.g. fewer ports)."""
        return cls("edit", args=dict(args))

    @classmethod
    def reject(cls, reason: str) -> ApprovalDecision:
        return cls("reject", reason=reason)


Approver = Callable[[ApprovalRequest], ApprovalDecision]


def approve_all(request: ApprovalRequest) -> ApprovalDecision:
    """The approver behind ``--yes``."""
    return ApprovalDecision.approve()


def reject_all(reason: str) -> Approver:
    """An approver that refuses every active tool with ``reason``."""
    return lambda request: ApprovalDecision.reject(reason)


# --- results --------------------------------------------------------------------


@dataclass(frozen=True)
class TraceEntry:
    """One tool call of a question: what ran, with which arguments, and how it went."""

    call_id: str
    name: str
    args: dict[str, Any]
    status: str
    duration_ms: float = 0.0


@dataclass
class AskResult:
    answer: str
    trace: list[TraceEntry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    results: list[AnyResult] = field(default_factory=list)
    limit: LimitKind | None = None
    thread_id: str = "default"


@dataclass
class _Run:
    """What one ``ask`` has seen so far."""

    emit: OnEvent
    trace: list[TraceEntry] = field(default_factory=list)
    results: list[AnyResult] = field(default_factory=list)
    limit: LimitKind | None = None

    def limit_reached(self, kind: LimitKind, message: str) -> None:
        self.limit = kind
        self.emit(LimitReached(kind=kind, message=message))


# --- the assistant ---------------------------------------------------------------


class Assistant:
    """The agent for one runtime, one scope and one approver; see the module doc."""

    def __init__(
        self,
        runtime: ChatRuntime,
        options: runner.Options,
        settings: AgentSettings,
        approver: Approver,
    ) -> None:
        self.runtime = runtime
        self.options = options
        self.settings = settings
        self.approver = approver
        self._lock = threading.Lock()
        self._run = _Run(emit=_ignore)
        self._graph = self._build()

    @property
    def tool_names(self) -> list[str]:
        """The tools the model is offered; none when the runtime is analysis-only."""
        return list(self._tools)

    def ask(
        self,
        question: str,
        thread_id: str = "default",
        on_event: OnEvent | None = None,
    ) -> AskResult:
        """Answer ``question``, remembering earlier questions on ``thread_id``."""
        with self._lock:
            self._run = run = _Run(emit=on_event or _ignore)
            config = self._config(thread_id, run)
            seen = len(self._messages(config))
            messages: list[Any] = [HumanMessage(question)]
            if not self._tools:
                messages += self._prefetch(question, run)
            self._drive({"messages": messages}, config, run)
            answer = self._final_answer(config, seen, run)
            findings = [f for r in run.results for f in r.findings]
            run.emit(AnswerFinished(text=answer, findings=findings))
            return AskResult(
                answer, run.trace, findings, run.results, run.limit, thread_id
            )

    # -- building

    def _build(self) -> Any:
        tools = build_tools(self.options) if self.runtime.tools_enabled else []
        self._tools = {tool.name: tool for tool in tools}
        if not tools:
            log.info("%s runs analysis-only: no tools offered", self.runtime.model_name)
        return create_agent(
            RuntimeChatModel(runtime=self.runtime),
            tools,
            system_prompt=system_prompt(self.options.scope.entries()),
            middleware=self._middleware(),
            checkpointer=InMemorySaver(serde=_serializer()),
        )

    def _middleware(self) -> list[AgentMiddleware[Any, Any, Any]]:
        gated: dict[str, bool | InterruptOnConfig] = {
            name: self._gate() for name in self._tools if name in ACTIVE_TOOLS
        }
        middleware: list[AgentMiddleware[Any, Any, Any]] = []
        if gated:
            middleware.append(HumanInTheLoopMiddleware(interrupt_on=gated))
        middleware += [
            _ModelLimit(self, run_limit=self.settings.max_model_calls),
            _ToolLimit(self, run_limit=self.settings.max_tool_calls),
            _Observer(self),
            ToolErrorMiddleware(on_error=_tool_error_text),
        ]
        return middleware

    def _gate(self) -> InterruptOnConfig:
        scope = self.options.scope
        return InterruptOnConfig(
            allowed_decisions=["approve", "edit", "reject"],
            description="Active network scan: needs approval",
            when=lambda request: not _refused_by_scope(request, scope),
        )

    # -- running

    def _config(self, thread_id: str, run: _Run) -> RunnableConfig:
        return {
            "configurable": {"thread_id": thread_id},
            "recursion_limit": self.settings.recursion_limit,
            "callbacks": [_TokenRelay(run.emit)],
        }

    def _drive(self, payload: Any, config: RunnableConfig, run: _Run) -> None:
        """Invoke the graph, answering approval interrupts until it finishes."""
        try:
            while True:
                self._graph.invoke(payload, config)
                interrupts = self._graph.get_state(config).interrupts
                if not interrupts:
                    return
                payload = Command(resume=self._review(interrupts[0].value, config))
        except GraphRecursionError:
            limit = self.settings.recursion_limit
            run.limit_reached("recursion", f"Stopped after {limit} agent steps.")

    def _review(
        self, request: dict[str, Any], config: RunnableConfig
    ) -> dict[str, Any]:
        """Ask the approver about each gated call of one model turn."""
        pending = self._pending_calls(config)
        decisions = []
        for action in request["action_requests"]:
            call_id = _take_call_id(pending, action["name"], action["args"])
            asked = ApprovalRequest(
                call_id,
                action["name"],
                dict(action["args"]),
                action.get("description", ""),
            )
            self._run.emit(asked)
            decision = self.approver(asked)
            decisions.append(self._record(asked, decision))
        return {"decisions": decisions}

    def _record(
        self, asked: ApprovalRequest, decision: ApprovalDecision
    ) -> dict[str, Any]:
        args = (
            decision.args if decision.kind == "edit" and decision.args else asked.args
        )
        self._run.emit(
            ApprovalDecided(
                asked.call_id, asked.name, decision.kind, args, decision.reason
            )
        )
        log.info("approval of %s %s: %s", asked.name, asked.args, decision.kind)
        if decision.kind == "approve":
            return {"type": "approve"}
        if decision.kind == "edit":
            return {"type": "edit", "edited_action": {"name": asked.name, "args": args}}
        self._run.trace.append(TraceEntry(asked.call_id, asked.name, args, "rejected"))
        return {"type": "reject", "message": decision.reason or "not approved"}

    def _prefetch(self, question: str, run: _Run) -> list[Any]:
        """Analysis-only: code, not the model, runs the passive checks asked about.

        A model that failed its tool-call self-test cannot pick tools, so for each
        target the question names, ``pq_check`` runs (and ``tls_check`` when the
        question is about certificates); the model then explains the results. Active
        tools never run this way, and the runner enforces scope as always.
        """
        tools = {
            t.name: t for t in build_tools(self.options) if t.name in PASSIVE_TOOLS
        }
        wanted = ["pq_check", *(["tls_check"] if _about_certificates(question) else [])]
        if _wants_active_scan(question):
            run.emit(Notice(tool_texts().note("analysis_only_no_scan")))
        messages: list[Any] = []
        targets = [t for t in find_targets(question) if "/" not in t]
        for index, target in enumerate(targets):
            for name in wanted:
                call = {
                    "id": f"auto_{index}_{name}",
                    "name": name,
                    "args": {"target": target},
                }
                messages += [
                    AIMessage("", tool_calls=[call]),
                    self._run_passive(tools[name], call, run),
                ]
        return messages

    def _run_passive(self, tool: Any, call: dict[str, Any], run: _Run) -> ToolMessage:
        run.emit(ToolStarted(call["id"], call["name"], call["args"]))
        started = time.monotonic()
        message: ToolMessage = tool.invoke({"type": "tool_call", **call})
        duration = round((time.monotonic() - started) * 1000, 1)
        _report_finished(run, call["id"], call["name"], call["args"], message, duration)
        return message

    # -- reading the thread

    def _messages(self, config: RunnableConfig) -> list[Any]:
        values = self._graph.get_state(config).values
        return list(values.get("messages", [])) if values else []

    def _pending_calls(self, config: RunnableConfig) -> list[dict[str, Any]]:
        last = next(
            (m for m in reversed(self._messages(config)) if isinstance(m, AIMessage)),
            None,
        )
        return [dict(call) for call in last.tool_calls] if last else []

    def _final_answer(self, config: RunnableConfig, seen: int, run: _Run) -> str:
        new = self._messages(config)[seen:]
        last = next((m for m in reversed(new) if isinstance(m, AIMessage)), None)
        if last is None or (last.tool_calls and run.limit == "recursion"):
            return f"Stopped: the {run.limit or 'agent'} limit was reached."
        return last.text


# --- middleware -------------------------------------------------------------------


class _ModelLimit(ModelCallLimitMiddleware[Any, Any]):
    """LangChain's model-call limit, reporting when it stops a run."""

    def __init__(self, assistant: Assistant, run_limit: int) -> None:
        super().__init__(run_limit=run_limit, exit_behavior="end")
        self.assistant = assistant

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        update = super().before_model(state, runtime)
        if update and update.get("jump_to") == "end":
            self.assistant._run.limit_reached("model-calls", _last_text(update))
        return update


class _ToolLimit(ToolCallLimitMiddleware[Any, Any]):
    """LangChain's tool-call limit, reporting when it stops a run."""

    def __init__(self, assistant: Assistant, run_limit: int) -> None:
        super().__init__(run_limit=run_limit, exit_behavior="end")
        self.assistant = assistant

    @hook_config(can_jump_to=["end"])
    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        update = super().after_model(state, runtime)
        if update and update.get("jump_to") == "end":
            self.assistant._run.limit_reached("tool-calls", _last_text(update))
        return update


class _Observer(AgentMiddleware[AgentState[Any], Any, Any]):
    """Reports each tool call as events and keeps its typed result for the trace."""

    def __init__(self, assistant: Assistant) -> None:
        super().__init__()
        self.assistant = assistant

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        run, call = self.assistant._run, request.tool_call
        call_id, name, args = call["id"] or "", call["name"], dict(call["args"])
        run.emit(ToolStarted(call_id, name, args))
        started = time.monotonic()
        outcome = handler(request)
        duration = round((time.monotonic() - started) * 1000, 1)
        if isinstance(outcome, ToolMessage):
            _report_finished(run, call_id, name, args, outcome, duration)
        return outcome


class _TokenRelay(BaseCallbackHandler):
    """Forwards the chat model's streamed tokens as events."""

    def __init__(self, emit: OnEvent) -> None:
        self.emit = emit

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        message = getattr(chunk, "message", None)
        thinking = message.additional_kwargs.get("thinking") if message else None
        if thinking:
            self.emit(TokenStreamed("thinking", str(thinking)))
        elif isinstance(token, str) and token:
            self.emit(TokenStreamed("answer", token))


def _report_finished(
    run: _Run,
    call_id: str,
    name: str,
    args: dict[str, Any],
    message: ToolMessage,
    duration: float,
) -> None:
    """Record a finished tool call in the trace and report it as events."""
    result: AnyResult | None = message.artifact
    status = str(result.status) if result is not None else "error"
    if result is not None:
        run.results.append(result)
    run.trace.append(TraceEntry(call_id, name, args, status, duration))
    run.emit(ToolFinished(call_id, name, args, status, message.text, result, duration))
    if result is not None and result.status is Status.OUT_OF_SCOPE:
        reason = result.error or "out of scope"
        run.emit(ScopeRefused(call_id, name, result.target, reason))


_CERTIFICATE_WORDS = ("certificate", "cert ", "certs", "expir", "x.509", "x509")
_SCAN_WORDS = ("scan", "nmap", "open port", "ports")


def _about_certificates(question: str) -> bool:
    text = f"{question.lower()} "
    return any(word in text for word in _CERTIFICATE_WORDS)


def _wants_active_scan(question: str) -> bool:
    text = question.lower()
    return any(word in text for word in _SCAN_WORDS)


# --- helpers ----------------------------------------------------------------------


def _refused_by_scope(request: ToolCallRequest, scope: Scope) -> bool:
    """True when scope will refuse the call's target, so there is nothing to approve.

    This only decides whether to ask; the runner enforces scope either way.
    """
    target = str(request.tool_call["args"].get("target", ""))
    try:
        scope.check_target(target)
    except ScopeError:
        return True
    except NetwardenError:
        return False
    return False


def _take_call_id(
    pending: list[dict[str, Any]], name: str, args: dict[str, Any]
) -> str:
    for index, call in enumerate(pending):
        if call["name"] == name and call["args"] == args:
            return str(pending.pop(index).get("id") or "")
    return ""


def _tool_error_text(exc: Exception, request: ToolCallRequest) -> str:
    name = request.tool_call["name"]
    if isinstance(exc, NetwardenError):
        log.info("tool %s failed: %s", name, exc)
        return f"{tool_texts().note('tool_error')} {exc}"
    log.exception("tool %s crashed", name)
    return tool_texts().note("internal_error")


def _last_text(update: dict[str, Any]) -> str:
    messages = [m for m in update.get("messages", []) if isinstance(m, AIMessage)]
    return messages[-1].text if messages else "limit reached"


def _serializer() -> JsonPlusSerializer:
    """Checkpoints hold tool results; allow exactly the result types to come back."""
    types = [
        value
        for value in vars(models).values()
        if isinstance(value, type) and issubclass(value, (BaseModel, StrEnum))
    ]
    return JsonPlusSerializer(allowed_msgpack_modules=types)


def _ignore(event: AgentEvent) -> None:
    return None

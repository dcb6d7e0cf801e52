"""A scripted :class:`~agent.runtime.base.ChatRuntime` for deterministic tests.

:class:`ScriptedRuntime` replays a queue of steps, one per model turn. A step is a
:class:`Decision` or a function of what the model was shown (messages and offered
tools) that returns one, so a test can react to tool results. Every turn is recorded
in :attr:`ScriptedRuntime.seen`. Like a real runtime, it calls only offered tools:
a scripted call to a tool that was not offered is a test bug and raises.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.runtime.base import ChatMessage, Decision, OnToken, ToolCall, ToolSpec

Step = Decision | Callable[[list[ChatMessage], list[ToolSpec]], Decision]

_ids = itertools.count(1)
_WORDS = re.compile(r"\s*\S+")


class ScriptExhaustedError(AssertionError):
    """The agent asked for more turns than the script holds."""


@dataclass(frozen=True)
class Seen:
    """What the scripted model was shown on one turn."""

    messages: list[ChatMessage]
    tools: list[ToolSpec]

    @property
    def tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    def last(self, role: str) -> ChatMessage | None:
        return next((m for m in reversed(self.messages) if m.role == role), None)


def call(name: str, **arguments: Any) -> Decision:
    """A decision to call one tool."""
    return Decision(
        kind="call",
        calls=[ToolCall(id=f"call_{next(_ids)}", name=name, arguments=arguments)],
    )


def answer(text: str, thinking: str = "") -> Decision:
    """A final answer, optionally after some thinking."""
    return Decision(kind="answer", text=text, thinking=thinking)


class ScriptedRuntime:
    """Replays ``steps`` in order; see the module docstring."""

    def __init__(
        self,
        steps: Iterable[Step] = (),
        *,
        name: str = "scripted",
        tools_enabled: bool = True,
    ) -> None:
        self.steps: deque[Step] = deque(steps)
        self.seen: list[Seen] = []
        self._name = name
        self._tools_enabled = tools_enabled

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def tools_enabled(self) -> bool:
        return self._tools_enabled

    def add(self, *steps: Step) -> None:
        self.steps.extend(steps)

    def decide(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        on_token: OnToken | None = None,
    ) -> Decision:
        self.seen.append(Seen(messages=list(messages), tools=list(tools)))
        if not self.steps:
            raise ScriptExhaustedError(
                f"no scripted turn left for turn {len(self.seen)}"
            )
        step = self.steps.popleft()
        decision = step if isinstance(step, Decision) else step(messages, tools)
        _check_offered(decision, tools)
        if on_token is not None:
            _stream(decision, on_token)
        return decision


def _check_offered(decision: Decision, tools: list[ToolSpec]) -> None:
    offered = {tool.name for tool in tools}
    for tool_call in decision.calls:
        if tool_call.name not in offered:
            raise ValueError(
                f"scripted call to {tool_call.name!r}, not offered {offered}"
            )


def _stream(decision: Decision, on_token: OnToken) -> None:
    """Stream thinking and answer word by word, as a real runtime would."""
    for piece in _WORDS.findall(decision.thinking):
        on_token("thinking", piece)
    for piece in _WORDS.findall(decision.text):
        on_token("answer", piece)

"""The contract between the model runtime and the agent loop.

A :class:`ChatRuntime` turns a conversation and a set of offered tools into one
:class:`Decision`: either calls to offered tools with arguments valid for their JSON
schemas, or a final answer. The local llama.cpp runtime and the scripted runtime used
in tests both implement it, so the agent loop never knows which one it drives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
TokenKind = Literal["thinking", "answer"]
OnToken = Callable[[TokenKind, str], None]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description and JSON schema of its args."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ChatMessage:
    """One turn of history. ``tool`` turns carry the result of ``tool_call_id``."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


@dataclass
class Decision:
    """What the model decided for one turn."""

    kind: Literal["call", "answer"]
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    thinking: str = ""
    raw: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retried: bool = False


class ChatRuntime(Protocol):
    """A model that can decide one turn; see the module docstring."""

    @property
    def model_name(self) -> str: ...

    @property
    def tools_enabled(self) -> bool:
        """False when the model failed its tool-call self-test (analysis-only)."""
        ...

    def decide(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        on_token: OnToken | None = None,
    ) -> Decision: ...

"""What every chat format family provides, and the pieces they share.

A format renders a conversation into a :data:`Prompt`: a list of plain text parts and
:class:`Special` tokens. The runtime tokenizes text parts with special tokens *off*,
so text that came from a user or from the network (a certificate subject, a banner)
can never turn into a role token, whatever it contains. Only :class:`Special` parts
become control tokens.

The decision of one turn is decoded under a GBNF grammar the format composes; the
format then parses the decoded text back into a call or an answer.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from agent.runtime.base import ChatMessage, ToolSpec
from agent.runtime.decision import Parsed
from agent.runtime.gguf_info import Family


@dataclass(frozen=True)
class Special:
    """A control token, written as its text form (``<|user|>``)."""

    text: str


Part = str | Special
Prompt = list[Part]

_THINKING = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one string, specials in their text form (for logs and tests)."""
    return "".join(part.text if isinstance(part, Special) else part for part in prompt)


def strip_thinking(text: str) -> str:
    """Drop ``<think>...</think>`` blocks (and an unclosed one) from history."""
    return _THINKING.sub("", text).strip()


def arguments_json(arguments: dict[str, object]) -> str:
    """Arguments as the model writes them: compact JSON, keys in the given order."""
    return json.dumps(arguments, ensure_ascii=False)


def tool_json(tool: ToolSpec) -> str:
    """One tool declaration as the model reads it."""
    spec = {
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    }
    return json.dumps(spec, ensure_ascii=False, indent=2)


class ChatFormat(ABC):
    """Render, constrain and parse the turns of one model family."""

    family: Family
    reasoning: bool = False
    stop_specials: tuple[str, ...] = ()
    """Special tokens that end a turn (besides the model's end-of-generation ids)."""

    @abstractmethod
    def render(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> Prompt:
        """History and tools as a prompt that ends by opening the assistant's turn."""

    @abstractmethod
    def grammar(self, tools: list[ToolSpec]) -> str:
        """GBNF admitting exactly one answer or one call to one of ``tools``."""

    @abstractmethod
    def parse(self, text: str, tools: list[ToolSpec]) -> Parsed:
        """The decoded decision as a call or answer; DecisionError if malformed."""

    @abstractmethod
    def answer_started(self, text: str) -> bool:
        """True once the decoded prefix can only be an answer: drop the grammar."""

    def answer_text(self, text: str) -> str:
        """The user-visible part of an answer decoded so far."""
        return text.lstrip()

    thinking_end = "</think>"
    """The text that ends the thinking of a reasoning model."""

    def thinking_open(self) -> Prompt:
        """What opens the thinking of a reasoning model."""
        return []

    def decision_after_thinking(self) -> Prompt:
        """What follows ``thinking_end`` to open the decision of a reasoning model."""
        return []

"""The generic handler: tools in the system prompt, calls in ``<tool_call>`` tags.

Any instruction-tuned model can follow it; the grammar makes every call well formed:

    <tool_call>
    {"name": "check_tls", "arguments": {"host": "127.0.0.1", "port": 443}}
    </tool_call>

An answer is plain text that does not start with ``<``. Families differ only in how a
turn is framed; :class:`GenericFormat` subclasses supply that framing.
"""

from __future__ import annotations

import json
from abc import abstractmethod

from agent.runtime import prompt_text
from agent.runtime.base import ChatMessage, ToolSpec
from agent.runtime.decision import DecisionError, Parsed, ParsedAnswer, validated_call
from agent.runtime.formats.base import (
    ChatFormat,
    Prompt,
    arguments_json,
    strip_thinking,
    tool_json,
)
from agent.runtime.grammar import ANSWER_CHAR, args_rules, literal

OPEN_CALL = "<tool_call>\n"
CLOSE_CALL = "\n</tool_call>"


class GenericFormat(ChatFormat):
    """Rendering and decisions shared by ChatML and Llama-3."""

    @abstractmethod
    def turn(self, role: str, text: str) -> Prompt:
        """One closed turn of ``role``."""

    @abstractmethod
    def open_turn(self, role: str) -> Prompt:
        """The header that opens a turn the model writes."""

    def prelude(self) -> Prompt:
        """What precedes the first turn (a BOS token)."""
        return []

    tool_role = "tool"
    """The role that carries tool results."""

    def render(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> Prompt:
        prompt = self.prelude()
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        if tools:
            system = "\n\n".join(filter(None, [system, declare_tools(tools)]))
        if system:
            prompt += self.turn("system", system)
        for message in messages:
            prompt += self._message(message)
        return [*prompt, *self.open_turn("assistant")]

    def grammar(self, tools: list[ToolSpec]) -> str:
        rules = [f"answer ::= [^<\\x00 \\t\\n] {ANSWER_CHAR}*"]
        calls = []
        if tools:
            args = args_rules(tools)
            for index, (tool, rule) in enumerate(zip(tools, args.names, strict=True)):
                head = literal(f'{{"name": {json.dumps(tool.name)}, "arguments": ')
                calls.append(f"call{index}")
                rules.append(f'call{index} ::= {head} {rule} "}}"')
            rules.append(
                f"call ::= {literal(OPEN_CALL)} ({' | '.join(calls)}) "
                f"{literal(CLOSE_CALL)}"
            )
            rules.append(args.rules)
        root = "answer | call" if tools else "answer"
        return "\n".join([f"root ::= {root}", *rules])

    def parse(self, text: str, tools: list[ToolSpec]) -> Parsed:
        stripped = text.strip()
        if not stripped.startswith("<tool_call>") or not tools:
            if not stripped:
                raise DecisionError("the answer is empty")
            return ParsedAnswer(stripped)
        body = stripped.removeprefix("<tool_call>").strip()
        if not body.endswith("</tool_call>"):
            raise DecisionError("the tool call is not closed with </tool_call>")
        return _call_from_body(body.removesuffix("</tool_call>"), tools)

    def answer_started(self, text: str) -> bool:
        stripped = text.lstrip()
        return bool(stripped) and not stripped.startswith("<")

    def _message(self, message: ChatMessage) -> Prompt:
        if message.role == "user":
            return self.turn("user", message.content)
        if message.role == "tool":
            return self.turn(self.tool_role, self.tool_result(message))
        if message.role == "assistant":
            return self.turn("assistant", assistant_text(message))
        return []

    def tool_result(self, message: ChatMessage) -> str:
        return message.content


def declare_tools(tools: list[ToolSpec]) -> str:
    """The tool block of the system turn, worded by prompts/generic_tools.txt."""
    listing = "\n\n".join(tool_json(tool) for tool in tools)
    return prompt_text.fill("generic_tools.txt", tools=listing)


def assistant_text(message: ChatMessage) -> str:
    """A past assistant turn: its text without thinking, then its calls."""
    parts = [strip_thinking(message.content)]
    for call in message.tool_calls:
        name, arguments = json.dumps(call.name), arguments_json(call.arguments)
        body = f'{{"name": {name}, "arguments": {arguments}}}'
        parts.append(OPEN_CALL + body + CLOSE_CALL)
    return "\n".join(part for part in parts if part)


def _call_from_body(body: str, tools: list[ToolSpec]) -> Parsed:
    try:
        envelope = json.loads(body, strict=False)
    except (json.JSONDecodeError, RecursionError):
        raise DecisionError("the tool call is not one complete JSON object") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("name"), str):
        raise DecisionError('the tool call needs a "name" string and "arguments"')
    arguments = envelope.get("arguments", {})
    return validated_call(envelope["name"], json.dumps(arguments), tools)

"""Turning decoded model text into a call or an answer, validated against schemas.

The grammar guarantees the shape of a decision, but not every JSON-schema rule
(patterns, ranges, formats) and not a complete output when generation is cut off.
Everything that can still be wrong raises :class:`DecisionError` with a message the
model can read and act on; nothing here raises anything else on any input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from agent.runtime.base import ToolSpec

MAX_REPORTED = 200


class DecisionError(ValueError):
    """A decoded decision that is not a valid call or answer; ``tool`` if known."""

    def __init__(self, message: str, tool: str = "", arguments: str = "") -> None:
        super().__init__(message)
        self.tool = tool
        self.arguments = arguments


@dataclass(frozen=True)
class ParsedAnswer:
    text: str


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


Parsed = ParsedAnswer | ParsedCall


def find_tool(name: str, tools: list[ToolSpec]) -> ToolSpec:
    """The offered tool called ``name``; DecisionError names the offered ones."""
    for tool in tools:
        if tool.name == name:
            return tool
    offered = ", ".join(tool.name for tool in tools) or "none"
    raise DecisionError(f"there is no tool named {_short(name)!r} (offered: {offered})")


def load_arguments(text: str, tool: str) -> dict[str, Any]:
    """Parse a JSON object of arguments; raw control characters are tolerated."""
    try:
        value = json.loads(text, strict=False)
    except (json.JSONDecodeError, RecursionError) as exc:
        message = f"the arguments for {tool} are not complete JSON: {_reason(exc)}"
        raise DecisionError(message, tool, _short(text)) from None
    if not isinstance(value, dict):
        raise DecisionError(f"the arguments for {tool} must be a JSON object", tool)
    return value


def validated_call(name: str, args_text: str, tools: list[ToolSpec]) -> ParsedCall:
    """Parse and check one call: known tool, JSON object, valid for its schema."""
    tool = find_tool(name, tools)
    arguments = load_arguments(args_text, tool.name)
    try:
        jsonschema.validate(arguments, tool.parameters)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        message = f"{where}: {_short(exc.message)}"
        raise DecisionError(message, tool.name, _short(args_text)) from None
    except jsonschema.SchemaError as exc:
        raise DecisionError(
            f"the schema of {tool.name} is invalid: {exc.message}"
        ) from None
    return ParsedCall(tool.name, arguments)


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at character {exc.pos}"
    return "nested too deeply"


def _short(text: str) -> str:
    return text if len(text) <= MAX_REPORTED else text[:MAX_REPORTED] + "..."

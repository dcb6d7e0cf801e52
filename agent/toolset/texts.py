"""The prompt text the agent shows the model, loaded from the ``prompts`` package.

No prompt string lives in code: the system prompt is ``prompts/system.txt`` and the
tool descriptions and result notes are ``prompts/tools.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template


@dataclass(frozen=True)
class ToolTexts:
    """Descriptions of the model's tools and the notes placed in their results."""

    descriptions: dict[str, str]
    notes: dict[str, str]

    def description(self, tool: str) -> str:
        return self.descriptions[tool].strip()

    def note(self, key: str) -> str:
        return self.notes[key].strip()


def _read(name: str) -> str:
    return resources.files("prompts").joinpath(name).read_text(encoding="utf-8")


@cache
def tool_texts() -> ToolTexts:
    data = tomllib.loads(_read("tools.toml"))
    return ToolTexts(descriptions=data["descriptions"], notes=data["notes"])


def system_prompt(scope_entries: list[str]) -> str:
    """``prompts/system.txt`` with ``$scope`` replaced by the allowlist."""
    scope = ", ".join(scope_entries) if scope_entries else "(nothing allowed)"
    return Template(_read("system.txt")).safe_substitute(scope=scope).strip()

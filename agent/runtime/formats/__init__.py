"""Chat format families; :func:`format_for` picks one from a GGUF's metadata."""

from __future__ import annotations

from agent.runtime.formats.base import ChatFormat, Prompt, Special, prompt_text
from agent.runtime.formats.chatml import ChatMLFormat
from agent.runtime.formats.glm4 import Glm4Format
from agent.runtime.formats.llama3 import Llama3Format
from agent.runtime.gguf_info import GGUFInfo

__all__ = [
    "ChatFormat",
    "ChatMLFormat",
    "Glm4Format",
    "Llama3Format",
    "Prompt",
    "Special",
    "format_for",
    "prompt_text",
]


def format_for(info: GGUFInfo) -> ChatFormat:
    """The format family the model's metadata names."""
    if info.family == "glm4":
        return Glm4Format(reasoning=info.reasoning)
    if info.family == "llama3":
        return Llama3Format()
    return ChatMLFormat()

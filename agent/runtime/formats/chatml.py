"""ChatML (``<|im_start|>role ... <|im_end|>``): SmolLM2, Qwen and most small models.

Tool results go back as a user turn wrapped in ``<tool_response>`` tags, the
convention Qwen models are trained on; models without a tool role read it as text.
"""

from __future__ import annotations

from agent.runtime.base import ChatMessage
from agent.runtime.formats.base import Prompt, Special
from agent.runtime.formats.generic import GenericFormat

START, END = Special("<|im_start|>"), Special("<|im_end|>")


class ChatMLFormat(GenericFormat):
    family = "chatml"
    stop_specials = (END.text, START.text, "<|endoftext|>")
    tool_role = "user"

    def turn(self, role: str, text: str) -> Prompt:
        return [START, f"{role}\n{text}", END, "\n"]

    def open_turn(self, role: str) -> Prompt:
        return [START, f"{role}\n"]

    def tool_result(self, message: ChatMessage) -> str:
        return f"<tool_response>\n{message.content}\n</tool_response>"

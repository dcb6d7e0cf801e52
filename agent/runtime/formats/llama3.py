"""Llama 3 (``<|start_header_id|>role<|end_header_id|>``); results as ``ipython``."""

from __future__ import annotations

from agent.runtime.formats.base import Prompt, Special
from agent.runtime.formats.generic import GenericFormat

BEGIN = Special("<|begin_of_text|>")
HEADER, HEADER_END = Special("<|start_header_id|>"), Special("<|end_header_id|>")
EOT = Special("<|eot_id|>")


class Llama3Format(GenericFormat):
    family = "llama3"
    stop_specials = (EOT.text, "<|eom_id|>", "<|end_of_text|>", HEADER.text)
    tool_role = "ipython"

    def prelude(self) -> Prompt:
        return [BEGIN]

    def turn(self, role: str, text: str) -> Prompt:
        return [*self.open_turn(role), text, EOT]

    def open_turn(self, role: str) -> Prompt:
        return [HEADER, role, HEADER_END, "\n\n"]

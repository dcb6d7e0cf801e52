"""GBNF building blocks for decision grammars.

The JSON-schema part comes from llama-cpp-python's SchemaConverter: one converter
visits every offered tool's schema under its own rule name (``tool0-args``, ...), so
the shared JSON rules are written once and each call alternative refers to the args
rule of its own tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from llama_cpp.llama_grammar import SchemaConverter

from agent.runtime.base import ToolSpec

ANSWER_CHAR = r"[^\x00]"
"""Any character; special tokens are kept out by the runtime, not the grammar."""


@dataclass(frozen=True)
class ArgsRules:
    """The rule name of each tool's arguments (in offer order) and all the rules."""

    names: list[str]
    rules: str


def literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return json.dumps(text, ensure_ascii=True)


def args_rules(tools: list[ToolSpec]) -> ArgsRules:
    """Compose one rule per tool for a JSON object valid for its schema."""
    converter = SchemaConverter(  # type: ignore[no-untyped-call]
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    names = []
    for index, tool in enumerate(tools):
        schema = converter.resolve_refs(tool.parameters, f"tool{index}")
        rule = converter.visit(schema, f"tool{index}-args")  # type: ignore[no-untyped-call]
        names.append(str(rule))
    rules = converter.format_grammar()  # type: ignore[no-untyped-call]
    return ArgsRules(names, str(rules))


def alternatives(rule_names: list[str]) -> str:
    """``a | b | c`` of rule names."""
    return " | ".join(rule_names)

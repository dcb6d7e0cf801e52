"""GLM-4-0414 / GLM-Z1-0414: native rendering, decision grammar and parser.

    [gMASK]<sop><|system|>\\n{system and tool declarations}
    <|user|>\\n{question}
    <|assistant|>{tool name}\\n{json arguments}        a past call (metadata line)
    <|observation|>\\n{tool result}
    <|assistant|>\\n{text}                             a past answer
    <|assistant|>                                     the turn the model decides

(no newlines between turns; they are drawn here for reading). A Z1 model thinks
first: ``\\n<think>`` opens its thinking, and after ``</think>`` the runtime inserts
``<|assistant|>`` so the decision is again the metadata line. Thinking never enters
history.
"""

from __future__ import annotations

from agent.runtime import prompt_text
from agent.runtime.base import ChatMessage, ToolSpec
from agent.runtime.decision import DecisionError, Parsed, ParsedAnswer, validated_call
from agent.runtime.formats.base import (
    ChatFormat,
    Prompt,
    Special,
    arguments_json,
    strip_thinking,
    tool_json,
)
from agent.runtime.grammar import ANSWER_CHAR, args_rules, literal

GMASK, SOP = Special("[gMASK]"), Special("<sop>")
SYSTEM, USER = Special("<|system|>"), Special("<|user|>")
ASSISTANT, OBSERVATION = Special("<|assistant|>"), Special("<|observation|>")
END = Special("<|endoftext|>")


class Glm4Format(ChatFormat):
    family = "glm4"
    stop_specials = (OBSERVATION.text, USER.text, END.text, SYSTEM.text, ASSISTANT.text)

    def __init__(self, *, reasoning: bool = False) -> None:
        self.reasoning = reasoning

    def render(self, messages: list[ChatMessage], tools: list[ToolSpec]) -> Prompt:
        prompt: Prompt = [GMASK, SOP]
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        if tools:
            system = "\n\n".join(filter(None, [system, declare_tools(tools)]))
        if system:
            prompt += [SYSTEM, "\n" + system]
        for message in messages:
            prompt += _turn(message)
        return [*prompt, ASSISTANT]

    def grammar(self, tools: list[ToolSpec]) -> str:
        rules = [
            f'answer ::= "\\n" [ \\t\\n]* [^ \\t\\n\\x00] {ANSWER_CHAR}*',
        ]
        calls = []
        if tools:
            args = args_rules(tools)
            for index, (tool, rule) in enumerate(zip(tools, args.names, strict=True)):
                calls.append(f"call{index}")
                rules.append(f'call{index} ::= {literal(tool.name)} "\\n" {rule}')
            rules.append(args.rules)
        root = " | ".join(["answer", *calls])
        return "\n".join([f"root ::= {root}", *rules])

    def parse(self, text: str, tools: list[ToolSpec]) -> Parsed:
        if text.startswith("\n") or not tools:
            answer = text.strip()
            if not answer:
                raise DecisionError("the answer is empty")
            return ParsedAnswer(answer)
        name, newline, args = text.partition("\n")
        if not newline:
            raise DecisionError(f"the call to {name.strip()!r} has no arguments line")
        return validated_call(name.strip(), args, tools)

    def answer_started(self, text: str) -> bool:
        return text.startswith("\n")

    def thinking_open(self) -> Prompt:
        return ["\n<think>"]

    def decision_after_thinking(self) -> Prompt:
        return [ASSISTANT]


def declare_tools(tools: list[ToolSpec]) -> str:
    """The tool block of the system turn, worded by prompts/glm_tools.txt."""
    listing = "\n\n".join(f"## {tool.name}\n\n{tool_json(tool)}" for tool in tools)
    return prompt_text.fill("glm_tools.txt", tools=listing)


def _turn(message: ChatMessage) -> Prompt:
    if message.role == "user":
        return [USER, "\n" + message.content]
    if message.role == "tool":
        return [OBSERVATION, "\n" + message.content]
    if message.role == "assistant":
        return _assistant_turns(message)
    return []


def _assistant_turns(message: ChatMessage) -> Prompt:
    turns: Prompt = []
    text = strip_thinking(message.content)
    if text:
        turns += [ASSISTANT, "\n" + text]
    for call in message.tool_calls:
        turns += [ASSISTANT, f"{call.name}\n{arguments_json(call.arguments)}"]
    return turns

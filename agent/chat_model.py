"""A LangChain chat model over a :class:`~agent.runtime.base.ChatRuntime`.

:class:`RuntimeChatModel` is what ``create_agent`` drives. ``bind_tools`` turns
LangChain tools into :class:`ToolSpec` (name, description, JSON schema of the
arguments); each model call converts the LangChain history into runtime messages,
asks the runtime for one decision and converts it back into an ``AIMessage`` with
``tool_calls``. Tokens stream through the callbacks' ``on_llm_new_token`` while the
runtime decodes; thinking tokens carry ``additional_kwargs={"thinking": text}`` on
their chunk and an empty content, so answer-only consumers can ignore them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages import ToolCall as LcToolCall
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from agent.runtime.base import (
    ChatMessage,
    ChatRuntime,
    Decision,
    OnToken,
    TokenKind,
    ToolCall,
    ToolSpec,
)

log = logging.getLogger(__name__)

ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool


class RuntimeChatModel(BaseChatModel):
    """LangChain's view of a local :class:`ChatRuntime`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    runtime: Any
    """The :class:`ChatRuntime` that decides each turn."""

    @property
    def _llm_type(self) -> str:
        return "netwarden-runtime"

    @property
    def chat_runtime(self) -> ChatRuntime:
        runtime: ChatRuntime = self.runtime
        return runtime

    def bind_tools(
        self,
        tools: Sequence[ToolLike],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools``; the runtime always chooses freely between them."""
        if tool_choice not in (None, "auto"):
            log.debug("tool_choice %r ignored: the runtime chooses freely", tool_choice)
        return self.bind(tools=[to_tool_spec(tool) for tool in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        specs: list[ToolSpec] = list(kwargs.get("tools") or [])
        history = to_chat_messages(messages)
        on_token = _token_forwarder(run_manager) if run_manager else None
        decision = self.chat_runtime.decide(history, specs, on_token=on_token)
        return ChatResult(generations=[ChatGeneration(message=to_ai_message(decision))])


# --- conversions --------------------------------------------------------------


def to_tool_spec(tool: ToolLike) -> ToolSpec:
    """A LangChain tool (or schema) as the runtime sees it."""
    function = convert_to_openai_tool(tool)["function"]
    parameters: dict[str, Any] = dict(function.get("parameters") or {})
    parameters.setdefault("type", "object")
    parameters.setdefault("properties", {})
    parameters.setdefault("additionalProperties", False)
    return ToolSpec(
        name=function["name"],
        description=function.get("description", ""),
        parameters=parameters,
    )


def to_chat_messages(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    """LangChain history as runtime turns; thinking is never sent back."""
    return [_to_chat_message(message) for message in messages]


def _to_chat_message(message: BaseMessage) -> ChatMessage:
    text = _text_of(message)
    if isinstance(message, SystemMessage):
        return ChatMessage(role="system", content=text)
    if isinstance(message, HumanMessage):
        return ChatMessage(role="user", content=text)
    if isinstance(message, ToolMessage):
        return ChatMessage(
            role="tool",
            content=text,
            tool_call_id=message.tool_call_id,
            name=message.name,
        )
    if isinstance(message, AIMessage):
        calls = [_from_lc_call(call) for call in message.tool_calls]
        return ChatMessage(role="assistant", content=text, tool_calls=calls)
    return ChatMessage(role="user", content=text)


def _from_lc_call(call: LcToolCall) -> ToolCall:
    return ToolCall(
        id=call.get("id") or _new_id(), name=call["name"], arguments=call["args"]
    )


def to_ai_message(decision: Decision) -> AIMessage:
    """A runtime decision as the ``AIMessage`` the agent loop expects."""
    calls = (
        [
            LcToolCall(name=c.name, args=dict(c.arguments), id=c.id or _new_id())
            for c in decision.calls
        ]
        if decision.kind == "call"
        else []
    )
    usage = {
        "input_tokens": decision.prompt_tokens,
        "output_tokens": decision.completion_tokens,
        "total_tokens": decision.prompt_tokens + decision.completion_tokens,
    }
    return AIMessage(
        content=decision.text,
        tool_calls=calls,
        additional_kwargs={"thinking": decision.thinking} if decision.thinking else {},
        response_metadata={"retried": decision.retried},
        usage_metadata=usage,
    )


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(json.dumps(block, ensure_ascii=True, default=str))
    return "".join(parts)


def _token_forwarder(run_manager: CallbackManagerForLLMRun) -> OnToken:
    def forward(kind: TokenKind, text: str) -> None:
        if kind == "thinking":
            chunk = AIMessageChunk(content="", additional_kwargs={"thinking": text})
            run_manager.on_llm_new_token("", chunk=ChatGenerationChunk(message=chunk))
        else:
            chunk = AIMessageChunk(content=text)
            run_manager.on_llm_new_token(text, chunk=ChatGenerationChunk(message=chunk))

    return forward


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"

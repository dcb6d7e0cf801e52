"""The LangChain adapter over a ChatRuntime: tool binding, conversions, streaming."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk

from agent.chat_model import (
    RuntimeChatModel,
    to_ai_message,
    to_chat_messages,
    to_tool_spec,
)
from agent.runtime.base import Decision, ToolCall
from agent.testing import ScriptedRuntime, answer, call
from agent.toolset import build_tools
from agent.toolset.schemas import HOST_PATTERN
from tools import runner


def tool_named(name: str) -> Any:
    return next(t for t in build_tools(runner.Options()) if t.name == name)


def test_tool_spec_has_tight_schema() -> None:
    spec = to_tool_spec(tool_named("nmap_scan"))
    props = spec.parameters["properties"]
    assert spec.name == "nmap_scan"
    assert spec.description.startswith("Active Nmap TCP scan")
    assert props["profile"]["enum"] == ["quick", "services", "vuln"]
    assert spec.parameters["required"] == ["target"]
    assert spec.parameters["additionalProperties"] is False
    assert (
        to_tool_spec(tool_named("tls_check")).parameters["properties"]["target"][
            "pattern"
        ]
        == HOST_PATTERN
    )


def test_messages_convert_to_runtime_turns() -> None:
    history = [
        SystemMessage("be brief"),
        HumanMessage("check 127.0.0.1"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "pq_check", "args": {"target": "127.0.0.1"}, "id": "c1"}
            ],
            additional_kwargs={"thinking": "private reasoning"},
        ),
        ToolMessage("status ok", tool_call_id="c1", name="pq_check"),
        AIMessage(
            [{"type": "text", "text": "All "}, {"type": "text", "text": "good."}]
        ),
    ]
    turns = to_chat_messages(history)
    assert [t.role for t in turns] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert turns[2].tool_calls == [ToolCall("c1", "pq_check", {"target": "127.0.0.1"})]
    assert "private reasoning" not in turns[2].content
    assert (turns[3].tool_call_id, turns[3].name, turns[3].content) == (
        "c1",
        "pq_check",
        "status ok",
    )
    assert turns[4].content == "All good."


def test_decision_converts_to_ai_message() -> None:
    decision = call("tls_check", target="localhost:8443")
    decision.thinking, decision.prompt_tokens, decision.completion_tokens = "hm", 10, 5
    message = to_ai_message(decision)
    assert message.tool_calls == [
        {
            "name": "tls_check",
            "args": {"target": "localhost:8443"},
            "id": decision.calls[0].id,
            "type": "tool_call",
        }
    ]
    assert message.additional_kwargs == {"thinking": "hm"}
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 15
    assert to_ai_message(Decision(kind="answer", text="done")).tool_calls == []


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        assert isinstance(chunk, ChatGenerationChunk)
        thinking = chunk.message.additional_kwargs.get("thinking")
        self.seen.append(("thinking", thinking) if thinking else ("answer", str(token)))


def test_bound_tools_reach_runtime_and_tokens_stream() -> None:
    runtime = ScriptedRuntime([answer("Looks fine.", thinking="Let me think.")])
    model = RuntimeChatModel(runtime=runtime).bind_tools([tool_named("pq_check")])
    handler = Tokens()

    message = model.invoke([HumanMessage("hi")], config={"callbacks": [handler]})

    assert message.content == "Looks fine."
    assert runtime.seen[0].tool_names == ["pq_check"]
    assert [m.role for m in runtime.seen[0].messages] == ["user"]
    thinking = "".join(text for kind, text in handler.seen if kind == "thinking")
    spoken = "".join(text for kind, text in handler.seen if kind == "answer")
    assert (thinking, spoken) == ("Let me think.", "Looks fine.")


def test_unbound_model_offers_no_tools() -> None:
    runtime = ScriptedRuntime([answer("ok")])
    RuntimeChatModel(runtime=runtime).invoke("hello")
    assert runtime.seen[0].tools == []

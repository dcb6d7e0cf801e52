"""The decision parsers on well-formed, truncated and hostile model output."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.runtime.base import ToolSpec
from agent.runtime.decision import DecisionError, Parsed, ParsedAnswer, ParsedCall
from agent.runtime.formats import ChatFormat, ChatMLFormat, Glm4Format

TOOLS = [
    ToolSpec(
        "check_tls",
        "Check TLS.",
        {
            "type": "object",
            "properties": {
                "host": {"type": "string", "pattern": "^[a-z0-9.]{1,30}$"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            },
            "required": ["host", "port"],
            "additionalProperties": False,
        },
    ),
    ToolSpec("scan", "Scan.", {"type": "object", "properties": {}}),
]
GLM, CHATML = Glm4Format(), ChatMLFormat()


def chatml_call(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {arguments}}}\n</tool_call>'


def test_glm_well_formed_call_and_answer() -> None:
    call = GLM.parse('check_tls\n{"host": "127.0.0.1", "port": 443}', TOOLS)
    assert call == ParsedCall("check_tls", {"host": "127.0.0.1", "port": 443})
    assert GLM.parse("\nIt is safe.\n", TOOLS) == ParsedAnswer("It is safe.")
    assert GLM.parse("scan\n{}", TOOLS) == ParsedCall("scan", {})


def test_chatml_well_formed_call_and_answer() -> None:
    text = chatml_call("check_tls", '{"host": "localhost", "port": 22}')
    assert CHATML.parse(text, TOOLS) == ParsedCall(
        "check_tls", {"host": "localhost", "port": 22}
    )
    assert CHATML.parse("  Plain answer.", TOOLS) == ParsedAnswer("Plain answer.")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('check_tls\n{"host": "127.0.0.1", "po', "not complete JSON"),
        ("check_tls", "no arguments line"),
        ('check_tls\n{"host": "127.0.0.1", "port": 0}', "port: 0 is less than"),
        ('check_tls\n{"host": "1.1.1.1;rm -rf", "port": 1}', "host:"),
        ('check_tls\n["127.0.0.1"]', "must be a JSON object"),
        ('nmap_everything\n{"target": "8.8.8.8"}', "no tool named 'nmap_everything'"),
        ("\n   ", "empty"),
    ],
)
def test_glm_broken_output_is_a_decision_error(text: str, says: str) -> None:
    with pytest.raises(DecisionError, match=says):
        GLM.parse(text, TOOLS)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('<tool_call>\n{"name": "check_tls", "arguments": {"host"', "not closed"),
        ("<tool_call>\n{oops}\n</tool_call>", "not one complete JSON"),
        ('<tool_call>\n{"arguments": {}}\n</tool_call>', '"name" string'),
        (chatml_call("scan", "[1]"), "must be a JSON object"),
        (chatml_call("check_tls", '{"host": "a"}'), "'port' is a required"),
    ],
)
def test_chatml_broken_output_is_a_decision_error(text: str, says: str) -> None:
    with pytest.raises(DecisionError, match=says):
        CHATML.parse(text, TOOLS)


def test_raw_control_characters_in_strings_are_tolerated_then_validated() -> None:
    with pytest.raises(DecisionError, match="host:") as caught:
        GLM.parse('check_tls\n{"host": "a\tb", "port": 5}', TOOLS)
    assert caught.value.tool == "check_tls"


def test_deeply_nested_arguments_are_a_clean_error() -> None:
    with pytest.raises(DecisionError):
        GLM.parse("scan\n" + "[" * 100_000 + "]" * 100_000, TOOLS)


hostile_text = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda name, body: f"{name}\n{body}",
        st.sampled_from(["check_tls", "scan", "x"]),
        st.text(alphabet='{}[]":,0123456789 \n\t\\abcehlnoprstu<|>', max_size=120),
    ),
    st.builds(
        lambda body: "<tool_call>\n" + body,
        st.text(alphabet='{}[]":,0123456789 \n\\aemnrstu<>/_', max_size=120),
    ),
)


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_any_output_gives_a_decision_or_a_clean_error(text: str) -> None:
    for chat_format in (GLM, CHATML):
        outcome = _parse_or_error(chat_format, text)
        if isinstance(outcome, DecisionError):
            message = str(outcome)
            assert message
            assert "\n" not in message
        elif isinstance(outcome, ParsedCall):
            assert outcome.name in {t.name for t in TOOLS}
        else:
            assert isinstance(outcome, ParsedAnswer)


def _parse_or_error(chat_format: ChatFormat, text: str) -> Parsed | DecisionError:
    try:
        return chat_format.parse(text, TOOLS)
    except DecisionError as error:
        return error


@settings(max_examples=100, deadline=None)
@given(
    st.from_regex(r"\A[a-z0-9.]{1,30}\Z"),
    st.integers(min_value=1, max_value=65535),
)
def test_valid_calls_round_trip(host: str, port: int) -> None:
    arguments = {"host": host, "port": port}
    glm_text = "check_tls\n" + json.dumps(arguments)
    expected = ParsedCall("check_tls", arguments)
    assert GLM.parse(glm_text, TOOLS) == expected
    assert (
        CHATML.parse(chatml_call("check_tls", json.dumps(arguments)), TOOLS) == expected
    )

"""The TUI app driven with Pilot: scripted model, real checks against the lab.

The model is :class:`~agent.testing.ScriptedRuntime` wrapped in a ``LoadedModel``
and injected through ``NetwardenApp(loader=...)``; every check really runs against
the practice lab on 127.0.0.1, and nmap really scans.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from agent.modelload import LoadedModel
from agent.runtime.base import ChatMessage, Decision, OnToken, ToolSpec
from agent.settings import Settings, load_settings
from agent.testing import ScriptedRuntime, answer, call
from agent.tui.app import NetwardenApp
from agent.tui.chat import AnswerBlock, NoticeLine, PromptInput
from agent.tui.commands import complete, parse
from agent.tui.export import collect_findings
from agent.tui.modals.approval import ApprovalScreen
from agent.tui.widgets import FindingsPanel, ToolCard
from tools.errors import UsageError
from tools.lab import Lab
from tools.models import PqResult, ScanResult

Predicate = Callable[[], bool]


def loaded(runtime: ScriptedRuntime) -> Callable[[Path | None], LoadedModel]:
    def load(path: Path | None) -> LoadedModel:
        return LoadedModel(
            name="scripted-model",
            path=Path("scripted.gguf"),
            runtime=runtime,
            self_test_passed=True,
            self_test_detail="scripted",
            embedded=False,
        )

    return load


def make_app(runtime: ScriptedRuntime, lab: Lab | None = None) -> NetwardenApp:
    settings = Settings()
    if lab is not None:
        settings.tls.ca_file = lab.ca_file
    return NetwardenApp(settings, loader=loaded(runtime))


async def until(pilot: Pilot[Any], ready: Predicate, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.05)):
        if ready():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out waiting for the app")


async def started(pilot: Pilot[Any]) -> NetwardenApp:
    app = pilot.app
    assert isinstance(app, NetwardenApp)
    await until(pilot, lambda: app.assistant is not None)
    return app


async def send(pilot: Pilot[Any], text: str) -> None:
    pilot.app.query_one(PromptInput).load_text(text)
    await pilot.press("enter")


def idle(app: NetwardenApp) -> Predicate:
    return lambda: not [w for w in app.workers if w.group == "run" and w.is_running]


def cards(app: NetwardenApp) -> list[ToolCard]:
    return list(app.query(ToolCard))


def answers(app: NetwardenApp) -> list[str]:
    return [block.answer for block in app.query(AnswerBlock)]


def notices(app: NetwardenApp) -> str:
    return "\n".join(str(n.content) for n in app.query(NoticeLine))


def card_text(card: ToolCard) -> str:
    """What the card's sections show, as plain text."""
    console = Console(width=120, record=True, file=io.StringIO())
    for section in card.query(Static):
        console.print(section.content)
    return console.export_text()


def modal(app: NetwardenApp) -> Predicate:
    return lambda: isinstance(app.screen, ApprovalScreen)


# --- asking the assistant


async def test_ask_approve_runs_the_scan_and_answers(lab: Lab) -> None:
    port = lab.endpoints["pq-tls"].port
    runtime = ScriptedRuntime(
        [call("nmap_scan", target="127.0.0.1", ports=str(port)), answer("Port open.")]
    )
    async with make_app(runtime, lab).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, "scan 127.0.0.1")
        await until(pilot, modal(app))
        assert cards(app)[0].status == "approval"
        await pilot.press("a")
        await until(pilot, idle(app))
        card = cards(app)[0]
        assert card.status == "done"
        assert isinstance(card.result, ScanResult)
        assert [p.port for p in card.result.ports] == [port]
        assert answers(app)[-1] == "Port open."


async def test_ask_edit_narrows_the_ports(lab: Lab) -> None:
    pq_port = lab.endpoints["pq-tls"].port
    classical = lab.endpoints["classical-tls"].port
    runtime = ScriptedRuntime(
        [
            call("nmap_scan", target="127.0.0.1", ports=f"{pq_port},{classical}"),
            answer("Narrowed."),
        ]
    )
    async with make_app(runtime, lab).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, "scan both")
        await until(pilot, modal(app))
        await pilot.press("e")
        edited = {"target": "127.0.0.1", "ports": str(classical)}
        app.screen.query_one("#args-editor", TextArea).load_text(json.dumps(edited))
        await pilot.click("#approve")
        await until(pilot, idle(app))
        (card,) = cards(app)
        assert card.args["ports"] == str(classical)
        assert isinstance(card.result, ScanResult)
        assert [p.port for p in card.result.ports] == [classical]
        assert answers(app)[-1] == "Narrowed."


async def test_ask_reject_runs_nothing_and_answers() -> None:
    runtime = ScriptedRuntime(
        [call("nmap_scan", target="127.0.0.1"), answer("Not scanned.")]
    )
    async with make_app(runtime).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, "scan 127.0.0.1")
        await until(pilot, modal(app))
        await pilot.press("r")
        await until(pilot, idle(app))
        (card,) = cards(app)
        assert card.status == "rejected"
        assert card.result is None
        assert "rejected" in card.text
        assert answers(app)[-1] == "Not scanned."
        tool_message = runtime.seen[-1].last("tool")
        assert tool_message is not None
        assert "rejected by the user" in tool_message.content


async def test_approve_for_this_session_is_remembered(lab: Lab) -> None:
    port = str(lab.endpoints["pq-tls"].port)
    runtime = ScriptedRuntime(
        [
            call("nmap_scan", target="127.0.0.1", ports=port),
            answer("one"),
            call("nmap_scan", target="127.0.0.1", ports=port),
            answer("two"),
        ]
    )
    async with make_app(runtime, lab).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, "scan")
        await until(pilot, modal(app))
        await pilot.press("s", "a")
        await until(pilot, lambda: answers(app)[-1:] == ["one"])
        await send(pilot, "again")
        await until(pilot, lambda: answers(app)[-1:] == ["two"])
        assert not isinstance(app.screen, ApprovalScreen)
        assert [c.status for c in cards(app)] == ["done", "done"]


class GatedRuntime(ScriptedRuntime):
    """Streams the first word of an answer, then waits until ``gate`` opens."""

    def __init__(self, *steps: Decision) -> None:
        super().__init__(steps)
        self.gate = threading.Event()

    def decide(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        on_token: OnToken | None = None,
    ) -> Decision:
        count = 0

        def relay(kind: str, text: str) -> None:
            nonlocal count
            count += 1
            if count == 2:
                self.gate.wait(timeout=30)
            if on_token is not None:
                on_token(kind, text)  # type: ignore[arg-type]

        return super().decide(messages, tools, relay)


async def test_escape_cancels_mid_stream() -> None:
    runtime = GatedRuntime(answer("First LATE-WORD never shown."))
    async with make_app(runtime).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, "hello")
        await until(pilot, lambda: answers(app) == ["First"])
        await pilot.press("escape")
        runtime.gate.set()
        await until(pilot, idle(app))
        await pilot.pause(0.3)
        assert answers(app) == ["First"]
        assert "cancelled" in notices(app)
        # the app stays usable: a direct command runs afterwards
        await send(pilot, "/help")
        await until(pilot, lambda: "/scope" in " ".join(answers(app)))


async def test_scope_refusal_card_for_a_public_address() -> None:
    runtime = ScriptedRuntime([call("pq_check", target="8.8.8.8"), answer("Refused.")])
    async with make_app(runtime).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, "is 8.8.8.8 quantum safe?")
        await until(pilot, idle(app))
        (card,) = cards(app)
        assert card.status == "refused"
        assert "out of scope" in card_text(card)
        await send(pilot, "/pq 8.8.8.8")
        await until(pilot, lambda: len(cards(app)) == 2 and idle(app)())
        assert cards(app)[1].status == "refused"


# --- direct commands


async def test_pq_command_shows_the_matrix(lab: Lab) -> None:
    port = lab.endpoints["pq-tls"].port
    async with make_app(ScriptedRuntime(), lab).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, f"/pq 127.0.0.1:{port}")
        await until(pilot, lambda: bool(cards(app)) and cards(app)[0].status == "done")
        card = cards(app)[0]
        assert card.tool_name == "pq_check"
        assert isinstance(card.result, PqResult)
        text = card_text(card)
        assert "supported" in text
        row = next(line for line in text.splitlines() if "X25519MLKEM768" in line)
        assert "yes" in row.split()
        assert not runtime_was_used(app)


def runtime_was_used(app: NetwardenApp) -> bool:
    assert app.loaded is not None
    runtime = app.loaded.runtime
    assert isinstance(runtime, ScriptedRuntime)
    return bool(runtime.seen)


async def test_scan_command_asks_for_approval_first(lab: Lab) -> None:
    async with make_app(ScriptedRuntime(), lab).run_test(size=(80, 24)) as pilot:
        app = await started(pilot)
        await send(pilot, "/scan 127.0.0.1 --ports 1")
        await until(pilot, modal(app))
        (card,) = cards(app)
        assert card.status == "approval"
        assert card.result is None
        await pilot.press("r")
        await until(pilot, idle(app))
        assert card.status == "rejected"
        assert card.result is None


async def test_export_writes_the_findings(lab: Lab, tmp_path: Path) -> None:
    classical = lab.endpoints["classical-tls"].port
    expired = lab.endpoints["expired"].port
    report = tmp_path / "session.md"
    async with make_app(ScriptedRuntime(), lab).run_test(size=(120, 40)) as pilot:
        app = await started(pilot)
        await send(pilot, f"/pq 127.0.0.1:{classical}")
        await send(pilot, f"/tls localhost:{expired}")
        await until(pilot, lambda: len(app.results) == 2)
        panel = app.query_one(FindingsPanel)
        ids = {item.finding.id for item in panel.findings}
        assert "cert-expired" in ids
        await send(pilot, f"/export {report}")
        await until(pilot, report.exists)
    text = report.read_text()
    assert {f.finding.id for f in collect_findings(app.results)} == ids
    for finding_id in ids:
        assert f"`{finding_id}`" in text
    assert "cert-expired" in report.with_suffix(".html").read_text()


async def test_scope_edits_for_the_session_and_bad_commands() -> None:
    async with make_app(ScriptedRuntime()).run_test(size=(80, 24)) as pilot:
        app = await started(pilot)
        await send(pilot, "/scope add 10.9.0.0/24")
        await send(pilot, "/scope add not a scope!")
        await send(pilot, "/frobnicate")
        await pilot.pause(0.2)
        assert "10.9.0.0/24" in app.scope_entries
        assert "::1/128 +2" in str(app.query_one("#header", Static).content)
        text = notices(app)
        assert "unknown command /frobnicate" in text
        assert "neither a network" in text


async def test_prompt_history_and_completion() -> None:
    async with make_app(ScriptedRuntime()).run_test(size=(80, 24)) as pilot:
        prompt = pilot.app.query_one(PromptInput)
        await pilot.press("slash", "p", "tab")
        assert prompt.text == "/pq "
        prompt.load_text("/help")
        await pilot.press("enter", "ctrl+j")
        assert prompt.text == "\n"
        prompt.load_text("")
        await pilot.press("up")
        assert prompt.text == "/help"
        await pilot.press("down")
        assert prompt.text == ""


def test_parse_commands() -> None:
    request = parse("/scan 127.0.0.1 --ports 22,443 --profile services")
    assert request == parse("/scan 127.0.0.1 --ports=22,443 --profile=services")
    assert getattr(request, "args", None) == {
        "target": "127.0.0.1",
        "ports": "22,443",
        "profile": "services",
    }
    for bad in ("/scan", "/pq a b", "/tls x --ports 1", "/scan x --profile loud"):
        with pytest.raises(UsageError):
            parse(bad)
    assert complete("/ch") == "/check "
    assert complete("/s") == "/sc"
    assert complete("/sc") is None


# --- snapshots


async def _answered(pilot: Pilot[Any]) -> None:
    app = await started(pilot)
    app.query_one(PromptInput).cursor_blink = False
    await send(pilot, "Is 127.0.0.1:8443 quantum safe?")
    await until(pilot, idle(app))
    await pilot.pause(0.3)


def _snapshot_app() -> NetwardenApp:
    runtime = ScriptedRuntime(
        [
            answer(
                "Yes: the server **prefers X25519MLKEM768**.\n\n"
                "- key exchange: quantum-safe\n- authentication: vulnerable",
                thinking="The pq_check result shows the hybrid group.",
            )
        ]
    )
    return make_app(runtime)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(_snapshot_app(), terminal_size=size, run_before=_answered)


async def test_scope_save_model_and_clear(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[checks]\ntimeout = 3.0\n")
    runtime = ScriptedRuntime([call("pq_check", target="8.8.8.8"), answer("No.")])
    app = NetwardenApp(Settings(), config_path=config, loader=loaded(runtime))
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await send(pilot, "/scope add 10.9.0.0/24")
        await send(pilot, "/scope save")
        await send(pilot, "/model")
        await pilot.pause(0.2)
        assert "tool-call self-test passed: scripted" in notices(app)
        await send(pilot, "8.8.8.8?")
        await until(pilot, idle(app))
        assert cards(app)
        await send(pilot, "/clear")
        await pilot.pause(0.2)
        assert not cards(app)
        assert not app.results
    saved = load_settings(config)
    assert saved.checks.timeout == 3.0
    assert "10.9.0.0/24" in saved.scope.allow

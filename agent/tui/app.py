"""``NetwardenApp``: the terminal app around the assistant and the direct checks.

One path renders everything: the assistant's events arrive from its worker thread
through :meth:`NetwardenApp.post_event`, and the direct commands (``/pq``, ``/scan``,
...) emit the same :mod:`agent.events` from their async workers, so a card looks the
same whoever ran the check. Long work (loading the model, answering, checks) runs in
workers; the UI thread never waits. Escape cancels every running question or check:
the events of a cancelled run are ignored from then on and a pending approval is
rejected, so the worker ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import tomllib
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from agent.events import (
    AgentEvent,
    AnswerFinished,
    ApprovalDecided,
    ApprovalRequested,
    LimitReached,
    Notice,
    OnEvent,
    ScopeRefused,
    TokenStreamed,
    ToolFinished,
    ToolStarted,
)
from agent.loop import ApprovalDecision, ApprovalRequest, Assistant
from agent.settings import Settings, default_config_path
from agent.toolset.render import render_result
from agent.tui import commands
from agent.tui.chat import AnswerBlock, ChatPane, NoticeLine, PromptInput, UserMessage
from agent.tui.export import collect_findings, html_report, markdown_report
from agent.tui.modals.approval import ARG_SCHEMAS, ApprovalOutcome, ApprovalScreen
from agent.tui.widgets import STYLESHEET, FindingsPanel, ToolCard
from tools import runner
from tools.errors import NetwardenError, ScopeError
from tools.models import AnyResult, Status
from tools.scope import Scope
from tools.targets import parse_ports

if TYPE_CHECKING:
    from agent.modelload import LoadedModel

log = logging.getLogger(__name__)

ModelLoader = Callable[[Path | None], "LoadedModel"]
WIDE = 110  # columns from which the findings panel shows without asking


class NetwardenApp(App[None]):
    """The netwarden TUI; ``loader`` replaces model loading (tests inject one)."""

    CSS_PATH = [Path(__file__).with_name("app.tcss"), STYLESHEET]
    TITLE = "netwarden"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("f1", "help", "Help"),
        Binding("f2", "toggle_findings", "Findings"),
        Binding("ctrl+l", "clear", "Clear"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path | None = None,
        model_path: Path | None = None,
        loader: ModelLoader | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.config_path = config_path
        self.model_path = model_path
        self.model_loader = loader or _load_model(settings)
        self.loaded: LoadedModel | None = None
        self.assistant: Assistant | None = None
        self.scope_entries = _entries(settings)
        self.results: list[AnyResult] = []
        self.remembered: set[tuple[str, str]] = set()
        self._runs = itertools.count(1)
        self._live: set[int] = set()
        self._cards: dict[str, ToolCard] = {}
        self._card_ids = itertools.count(1)
        self._answer: AnswerBlock | None = None
        self._pending: Future[ApprovalOutcome | None] | None = None
        self._thread = "tui-1"
        self._findings_shown: bool | None = None

    # --- layout

    def compose(self) -> ComposeResult:
        yield Static(self._header_text(), id="header", markup=False)
        with Horizontal(id="main"):
            yield ChatPane(id="chat")
            yield FindingsPanel(id="findings")
        yield PromptInput(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PromptInput).focus()
        self._note("loading model... direct commands work now; /help lists them")
        self._load(self.model_path)

    def on_resize(self) -> None:
        if self._findings_shown is None:
            self.query_one(FindingsPanel).display = self.size.width >= WIDE

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

    @property
    def options(self) -> runner.Options:
        return runner.Options(
            scope=Scope.from_entries(self.scope_entries),
            timeout=self.settings.checks.timeout,
            ca_file=self.settings.tls.ca_file,
            thresholds=self.settings.tls.thresholds(),
        )

    def _header_text(self) -> str:
        if self.loaded is None:
            model = "loading model..."
        else:
            mode = "tools" if self.loaded.runtime.tools_enabled else "analysis-only"
            model = f"{self.loaded.name} ({mode})"
        return f"netwarden │ {model} │ scope: {_scope_summary(self.scope_entries)}"

    def _refresh_header(self) -> None:
        self.query_one("#header", Static).update(self._header_text())

    def _note(self, text: str, kind: str = "notice") -> None:
        self.chat.mount(NoticeLine(text, kind=kind))

    # --- the model

    @work(thread=True, group="load", exclusive=True)
    def _load(self, path: Path | None) -> None:
        try:
            loaded = self.model_loader(path)
            assistant = self._assistant(loaded)
        except NetwardenError as exc:
            self.call_from_thread(self._note, f"model not loaded: {exc}", "error")
            return
        self.call_from_thread(self._loaded, loaded, assistant)

    def _assistant(self, loaded: LoadedModel) -> Assistant:
        return Assistant(
            loaded.runtime, self.options, self.settings.agent, self.approve
        )

    def _loaded(self, loaded: LoadedModel, assistant: Assistant) -> None:
        self.loaded, self.assistant = loaded, assistant
        self._refresh_header()
        self._note(_model_text(loaded))

    # --- input

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        self.chat.anchor()
        await self.chat.add(UserMessage(text))
        if text.startswith("/"):
            await self._command(text)
        elif self.assistant is None:
            self._note("the model is still loading; direct commands work now", "error")
        else:
            self._answer = None
            self._ask(text, self._start_run())

    def _start_run(self) -> int:
        run = next(self._runs)
        self._live.add(run)
        return run

    # --- asking the assistant

    @work(thread=True, group="run")
    def _ask(self, question: str, run: int) -> None:
        assert self.assistant is not None
        emit = self._emitter(run)
        try:
            self.assistant.ask(question, thread_id=self._thread, on_event=emit)
        except Exception as exc:  # the run ends with a message, never a traceback
            log.exception("question failed")
            emit(Notice(f"the assistant stopped: {exc}"))
        finally:
            self._live.discard(run)

    def _emitter(self, run: int) -> OnEvent:
        render: Callable[..., bool | Awaitable[bool]] = self.post_event

        def emit(event: AgentEvent) -> None:
            if run not in self._live:
                return
            try:
                shown: bool = self.call_from_thread(render, event, run)
            except RuntimeError:  # the app is closing
                shown = False
            log.debug("event %s shown: %s", type(event).__name__, shown)

        return emit

    def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        """The assistant's approver: runs on its worker thread, waits for the modal."""
        target = str(request.args.get("target", ""))
        if (request.name, target) in self.remembered:
            return ApprovalDecision.approve()
        address, rule = resolve(target, Scope.from_entries(self.scope_entries))
        future: Future[ApprovalOutcome | None] = Future()
        self._pending = future
        screen = ApprovalScreen(request, address, rule)
        self.call_from_thread(self.push_screen, screen, future.set_result)
        outcome = _wait(future)
        return self._decided(request, outcome)

    def _decided(
        self, request: ApprovalRequest, outcome: ApprovalOutcome | None
    ) -> ApprovalDecision:
        self._pending = None
        if outcome is None:
            return ApprovalDecision.reject("cancelled")
        if outcome.remember and outcome.decision.kind != "reject":
            target = str(request.args.get("target", ""))
            self.remembered.add((request.name, target))
        return outcome.decision

    # --- rendering events (UI thread)

    async def post_event(self, event: AgentEvent, run: int) -> bool:
        """Render one event of ``run``; False when the run was cancelled."""
        if run not in self._live:
            return False
        if isinstance(event, TokenStreamed):
            await self._token(event)
        elif isinstance(event, ApprovalRequested | ToolStarted):
            await self._tool_started(event)
        elif isinstance(event, ApprovalDecided):
            await self._approval_decided(event)
        elif isinstance(event, ToolFinished):
            await self._tool_finished(event)
        elif isinstance(event, ScopeRefused):
            (await self._card(event.call_id, event.name, {})).show_refused(event.reason)
        elif isinstance(event, AnswerFinished):
            await self._answer_finished(event)
        elif isinstance(event, Notice | LimitReached):
            kind = "limit" if isinstance(event, LimitReached) else "notice"
            text = event.message if isinstance(event, LimitReached) else event.text
            await self.chat.add(NoticeLine(text, kind=kind))
        return True

    async def _token(self, event: TokenStreamed) -> None:
        if self._answer is None:
            self._answer = AnswerBlock()
            await self.chat.add(self._answer)
        if event.kind == "thinking":
            self._answer.add_thinking(event.text)
        else:
            await self._answer.add_answer(event.text)

    async def _tool_started(self, event: ApprovalRequested | ToolStarted) -> None:
        await self._close_answer()
        card = await self._card(event.call_id, event.name, event.args)
        card.set_status(
            "approval" if isinstance(event, ApprovalRequested) else "running"
        )

    async def _approval_decided(self, event: ApprovalDecided) -> None:
        card = await self._card(event.call_id, event.name, event.args)
        if event.decision == "reject":
            card.show_rejected(event.reason or "not approved")
        elif event.decision == "edit" and event.args != card.args:
            replacement = self._new_card(event.call_id, event.name, event.args)
            await self.chat.mount(replacement, before=card)
            await card.remove()

    async def _tool_finished(self, event: ToolFinished) -> None:
        card = await self._card(event.call_id, event.name, event.args)
        card.show_result(event.result, event.text)
        if event.result is not None:
            self.results.append(event.result)
            findings = event.result.findings
            self.query_one(FindingsPanel).add(
                event.result.target, findings, card.id or ""
            )

    async def _answer_finished(self, event: AnswerFinished) -> None:
        if self._answer is None:
            self._answer = AnswerBlock()
            await self.chat.add(self._answer)
        await self._answer.finish(event.text)
        self._answer = None

    async def _close_answer(self) -> None:
        if self._answer is not None:
            await self._answer.finish()
            self._answer = None

    async def _card(self, call_id: str, name: str, args: dict[str, Any]) -> ToolCard:
        card = self._cards.get(call_id)
        if card is None:
            card = self._new_card(call_id, name, args)
            await self.chat.add(card)
        return card

    def _new_card(self, call_id: str, name: str, args: dict[str, Any]) -> ToolCard:
        card = ToolCard(call_id, name, args, id=f"card-{next(self._card_ids)}")
        self._cards[call_id] = card
        return card

    def on_findings_panel_finding_selected(
        self, message: FindingsPanel.FindingSelected
    ) -> None:
        cards = self.query(f"#{message.card_id}")
        if cards:
            self.chat.scroll_to_widget(cards.first(), top=True)
            cards.first().focus()

    # --- direct commands

    async def _command(self, line: str) -> None:
        try:
            parsed = commands.parse(line)
        except NetwardenError as exc:
            self._note(str(exc), "error")
            return
        if isinstance(parsed, commands.ToolRequest):
            self._check(parsed, self._start_run())
            return
        handler = getattr(self, f"_cmd_{parsed.name[1:]}")
        await handler(parsed.words)

    @work(group="run")
    async def _check(self, request: commands.ToolRequest, run: int) -> None:
        call_id = f"cmd_{run}"
        try:
            args = await self._approved_args(request, call_id, run)
            if args is not None:
                await self._run_check(call_id, request.name, args, run)
        except asyncio.CancelledError:
            card = self._cards.get(call_id)
            if card is not None:
                card.show_result(None, "cancelled")
            raise
        finally:
            self._live.discard(run)

    async def _approved_args(
        self, request: commands.ToolRequest, call_id: str, run: int
    ) -> dict[str, Any] | None:
        """The arguments to run with: the modal first for an active check."""
        target = str(request.args["target"])
        if not request.active or (request.name, target) in self.remembered:
            return request.args
        scope = Scope.from_entries(self.scope_entries)
        address, rule = await asyncio.to_thread(resolve, target, scope)
        if address is None:
            return request.args  # the runner refuses it; there is nothing to approve
        asked = ApprovalRequest(call_id, request.name, request.args, _ACTIVE_TEXT)
        await self.post_event(asked, run)
        screen = ApprovalScreen(asked, address, rule)
        outcome = await self.push_screen(screen, wait_for_dismiss=True)
        decision = self._decided(asked, outcome)
        args = (
            decision.args if decision.kind == "edit" and decision.args else asked.args
        )
        event = ApprovalDecided(
            call_id, asked.name, decision.kind, args, decision.reason
        )
        await self.post_event(event, run)
        return None if decision.kind == "reject" else args

    async def _run_check(
        self, call_id: str, name: str, args: dict[str, Any], run: int
    ) -> None:
        await self.post_event(ToolStarted(call_id, name, args), run)
        started = time.monotonic()
        result: AnyResult | None = None
        try:
            result = await self._execute(name, args)
            text = render_result(name, result)
        except (NetwardenError, ValidationError) as exc:
            text = f"error: {_one_line(exc)}"
        duration = round((time.monotonic() - started) * 1000, 1)
        status = str(result.status) if result is not None else "error"
        await self.post_event(
            ToolFinished(call_id, name, args, status, text, result, duration), run
        )
        if result is not None and result.status is Status.OUT_OF_SCOPE:
            reason = result.error or "out of scope"
            await self.post_event(
                ScopeRefused(call_id, name, result.target, reason), run
            )
        self.call_after_refresh(self._show_card, call_id)

    def _show_card(self, call_id: str) -> None:
        """Scroll a finished direct check's card to the top: no answer follows it."""
        card = self._cards.get(call_id)
        if card is not None and card.is_mounted:
            self.chat.release_anchor()
            self.chat.scroll_to_widget(card, top=True, animate=False)

    async def _execute(self, name: str, args: dict[str, Any]) -> AnyResult:
        checked = ARG_SCHEMAS[name].model_validate(args).model_dump()
        target, options = checked["target"], self.options
        ports = parse_ports(checked["ports"]) if checked.get("ports") else None
        if name == "tls_check":
            return await runner.run_tls(target, options)
        if name == "pq_check":
            return await runner.run_pq(target, options)
        if name == "nmap_scan":
            profile = checked.get("profile") or "quick"
            return await runner.run_scan(target, options, profile=profile, ports=ports)
        return await runner.run_check(target, options, ports)

    async def _cmd_help(self, words: list[str]) -> None:
        await self._markdown(commands.help_text())

    async def _markdown(self, text: str) -> None:
        block = AnswerBlock()
        await self.chat.add(block)
        await block.finish(text)

    async def _cmd_model(self, words: list[str]) -> None:
        if words:
            self._note(f"loading model {words[0]}...")
            self._load(Path(words[0]).expanduser())
        elif self.loaded is None:
            self._note("the model is still loading")
        else:
            self._note(_model_text(self.loaded))

    async def _cmd_scope(self, words: list[str]) -> None:
        try:
            if words and words[0] == "save":
                self._save_scope()
            elif words:
                entry = " ".join(words[1:])
                self.scope_entries = commands.edit_scope(
                    self.scope_entries, words[0], entry
                )
                self._scope_changed()
        except NetwardenError as exc:
            self._note(str(exc), "error")
            return
        self._note(f"scope: {', '.join(self.scope_entries)}")

    def _scope_changed(self) -> None:
        self._refresh_header()
        if self.loaded is not None:
            self.assistant = self._assistant(self.loaded)
            self._note("scope changed for this session; the assistant starts afresh")

    def _save_scope(self) -> None:
        path = self.config_path or default_config_path()
        data: dict[str, Any] = {}
        if path.exists():
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        commands.save_scope(path, data, self.scope_entries)
        self._note(f"scope saved to {path}")

    async def _cmd_clear(self, words: list[str]) -> None:
        self.action_cancel()
        await self.chat.clear()
        self.query_one(FindingsPanel).clear()
        self.results.clear()
        self._cards.clear()
        self._thread = f"tui-{next(self._runs)}"

    async def _cmd_export(self, words: list[str]) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(words[0]).expanduser() if words else Path(f"netwarden-{stamp}.md")
        try:
            written = export_session(self.results, path, model=self._model_name())
        except OSError as exc:
            self._note(f"export failed: {exc}", "error")
            return
        count = len(collect_findings(self.results))
        self._note(f"wrote {count} findings to {' and '.join(map(str, written))}")

    def _model_name(self) -> str:
        return self.loaded.name if self.loaded is not None else "none"

    # --- keys

    def action_cancel(self) -> None:
        """Stop every running question and check; ignore what they still send."""
        running = [w for w in self.workers if w.group == "run" and w.is_running]
        if not running:
            return
        self._live.clear()
        for worker in running:
            worker.cancel()
        if self._pending is not None and not self._pending.done():
            self._pending.set_result(None)
        if self._answer is not None:
            self.run_worker(self._answer.finish(), group="ui")
            self._answer = None
        self._note("cancelled", "error")

    def action_toggle_findings(self) -> None:
        panel = self.query_one(FindingsPanel)
        panel.display = not panel.display
        self._findings_shown = bool(panel.display)

    async def action_help(self) -> None:
        await self._cmd_help([])

    async def action_clear(self) -> None:
        await self._cmd_clear([])


_ACTIVE_TEXT = "Active network scan: needs approval"


def export_session(results: list[AnyResult], path: Path, *, model: str) -> list[Path]:
    """Write the Markdown report to ``path`` and the HTML one next to it."""
    generated = datetime.now().astimezone().isoformat(timespec="seconds")
    html_path = path.with_suffix(".html")
    path.write_text(markdown_report(results, model=model, generated=generated))
    html_path.write_text(html_report(results, model=model, generated=generated))
    return [path, html_path]


def resolve(target: str, scope: Scope) -> tuple[str | None, str]:
    """The address ``target`` pins to and the scope rule allowing it (None: refused)."""
    try:
        decision = scope.check_target(target)
    except ScopeError:
        return None, ""
    except NetwardenError as exc:
        return f"not resolved: {exc}", ""
    return decision.address, decision.rule


def _wait(future: Future[ApprovalOutcome | None]) -> ApprovalOutcome | None:
    """Wait for the modal on a worker thread; a cancelled worker stops waiting."""
    worker = get_current_worker()
    while True:
        try:
            return future.result(timeout=0.2)
        except FutureTimeout:
            if worker.is_cancelled:
                return None


def _scope_summary(entries: list[str]) -> str:
    shown = ", ".join(entries[:2])
    return f"{shown} +{len(entries) - 2}" if len(entries) > 2 else shown


def _entries(settings: Settings) -> list[str]:
    return [*settings.scope.allow, *(f"!{d}" for d in settings.scope.deny)]


def _model_text(loaded: LoadedModel) -> str:
    mode = "tools" if loaded.runtime.tools_enabled else "analysis-only"
    test = "passed" if loaded.self_test_passed else "failed"
    detail = loaded.self_test_detail
    detail = detail if len(detail) <= 120 else detail[:119] + "…"
    return (
        f"model {loaded.name} ({mode}) from {loaded.path}; "
        f"tool-call self-test {test}: {detail}"
    )


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)


def _load_model(settings: Settings) -> ModelLoader:
    """The real loader: llama.cpp is imported only when a model loads."""

    def load(path: Path | None) -> LoadedModel:
        from agent.modelload import load_model

        return load_model(settings, path)

    return load

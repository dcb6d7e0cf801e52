"""``netwarden ask``: the headless agent for scripts, CI and the daemon.

The answer goes to stdout; the trace of tool calls and notices go to stderr as they
happen (or everything as one JSON document with ``--json``). Active tools (scans) need
approval: ``--yes`` approves all, ``--approve TOOL`` one tool, and on a terminal the
user is asked. Without any of these there is nobody to ask, so an active tool is
refused with a message saying how to allow it; the command never hangs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from agent.cli import render
from agent.cli.labcmd import headline
from agent.events import (
    AgentEvent,
    ApprovalDecided,
    LimitReached,
    Notice,
    ScopeRefused,
    TokenStreamed,
    ToolFinished,
    ToolStarted,
)
from agent.loop import (
    ApprovalDecision,
    ApprovalRequest,
    Approver,
    AskResult,
    Assistant,
)
from agent.modelload import LoadedModel, load_model
from agent.settings import Settings
from tools import runner
from tools.errors import ScopeError, TargetError
from tools.scope import Scope
from tools.targets import find_targets, is_ip_literal, parse_target


@click.command()
@click.argument("question")
@click.option("--yes", is_flag=True, help="Approve every active tool (scans).")
@click.option(
    "--approve",
    "approved",
    multiple=True,
    metavar="TOOL",
    help="Approve this tool without asking (repeatable), e.g. nmap_scan.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="GGUF model file (default: [model] path, else the embedded model).",
)
@click.option("--thread", default="default", help="Conversation thread id.")
@click.option("--thinking", is_flag=True, help="Show the model's reasoning on stderr.")
@click.pass_obj
def ask(
    settings: Settings,
    /,
    question: str,
    yes: bool,
    approved: tuple[str, ...],
    as_json: bool,
    model_path: Path | None,
    thread: str,
    thinking: bool,
) -> None:
    """Ask the local assistant QUESTION; it runs the checks it needs."""
    answer_question(
        settings,
        question,
        approver=_approver(yes, approved),
        as_json=as_json,
        model_path=model_path,
        thread=thread,
        thinking=thinking,
    )


def answer_question(
    settings: Settings,
    question: str,
    *,
    approver: Approver,
    as_json: bool = False,
    model_path: Path | None = None,
    thread: str = "default",
    thinking: bool = False,
) -> AskResult:
    """Load the model, answer one question, print trace and answer."""
    scope = settings.build_scope()
    loaded = load_model(settings, model_path)
    _notice_model(loaded, quiet=as_json)
    for warning in scope_warnings(question, scope):
        _notice(f"note: {warning}", quiet=as_json)
    options = runner.Options(
        scope=scope,
        timeout=settings.checks.timeout,
        ca_file=settings.tls.ca_file,
        thresholds=settings.tls.thresholds(),
    )
    assistant = Assistant(loaded.runtime, options, settings.agent, approver)
    printer = _TracePrinter(quiet=as_json, thinking=thinking)
    result = assistant.ask(question, thread_id=thread, on_event=printer)
    if as_json:
        click.echo(json.dumps(_document(question, loaded, result), indent=2))
    else:
        printer.finish(result)
    return result


def scope_warnings(question: str, scope: Scope) -> list[str]:
    """Addresses named in the question that the scope refuses, said up front.

    Only IP addresses and ranges are checked here, without resolving anything; every
    tool enforces the scope again before it sends a packet.
    """
    warnings = []
    for mention in find_targets(question):
        try:
            if "/" in mention or is_ip_literal(parse_target(mention).host):
                scope.check_target(mention)
        except ScopeError as exc:
            warnings.append(f"{exc}; netwarden will not send it anything")
        except TargetError:
            continue
    return warnings


# --- approvals -------------------------------------------------------------------


def _approver(yes: bool, approved: tuple[str, ...]) -> Approver:
    interactive = sys.stdin.isatty() and sys.stderr.isatty()

    def decide(request: ApprovalRequest) -> ApprovalDecision:
        if yes or request.name in approved:
            return ApprovalDecision.approve()
        if not interactive:
            return ApprovalDecision.reject(
                f"{request.name} needs approval and there is no terminal to ask on; "
                f"rerun with --yes or --approve {request.name}"
            )
        return _ask_on_terminal(request)

    return decide


def _ask_on_terminal(request: ApprovalRequest) -> ApprovalDecision:
    render.err.print(Text(f"\n{request.description}", style="bold yellow"))
    render.err.print(json.dumps(request.args, indent=2))
    choice = click.prompt(
        "Run it? [a]pprove, [e]dit arguments, [r]eject",
        type=click.Choice(["a", "e", "r"]),
        default="r",
        err=True,
    )
    if choice == "a":
        return ApprovalDecision.approve()
    if choice == "e":
        edited = click.edit(json.dumps(request.args, indent=2), extension=".json")
        try:
            return ApprovalDecision.edit(json.loads(edited or ""))
        except json.JSONDecodeError:
            return ApprovalDecision.reject("the edited arguments were not valid JSON")
    return ApprovalDecision.reject("rejected by the user")


# --- output -------------------------------------------------------------------------


class _TracePrinter:
    """Prints the trace on stderr as events arrive; the answer on stdout at the end."""

    def __init__(self, quiet: bool, thinking: bool) -> None:
        self.quiet = quiet
        self.thinking = thinking

    def __call__(self, event: AgentEvent) -> None:
        if self.quiet:
            return
        line = self._line(event)
        if line is not None:
            render.err.print(line)

    def _line(self, event: AgentEvent) -> Text | None:
        if isinstance(event, TokenStreamed):
            if self.thinking and event.kind == "thinking":
                render.err.print(Text(event.text, style="dim italic"), end="")
            return None
        if isinstance(event, ToolStarted):
            args = json.dumps(event.args, separators=(", ", ": "))
            return Text(f"→ {event.name} {args}", style="cyan")
        if isinstance(event, ApprovalDecided):
            style = "green" if event.decision != "reject" else "red"
            reason = f": {event.reason}" if event.reason else ""
            return Text(f"  {event.name} {event.decision}ed{reason}", style=style)
        if isinstance(event, ScopeRefused):
            return Text(f"  refused by scope: {event.reason}", style="red")
        if isinstance(event, ToolFinished):
            style = "green" if event.status == "ok" else "yellow"
            timing = f"{event.duration_ms:.0f} ms"
            line = Text(f"  {event.name}: {event.status} ({timing})", style=style)
            if event.result is not None and event.status == "ok":
                line.append(f"  {headline(event.result)}", style="bold")
            return line
        if isinstance(event, Notice):
            return Text(f"note: {event.text}", style="yellow")
        if isinstance(event, LimitReached):
            return Text(f"limit reached: {event.message}", style="yellow")
        return None

    def finish(self, result: AskResult) -> None:
        """The model's answer, then what the checks measured, stated by netwarden."""
        click.echo(result.answer.strip() or "(the model gave no answer)")
        if result.results:
            click.echo("\nMeasured by netwarden (not the model):")
            for checked in result.results:
                click.echo(
                    f"  {checked.target} [{checked.status}]: {headline(checked)}"
                )
        if result.findings:
            ids = ", ".join(sorted({f"{f.id} ({f.severity})" for f in result.findings}))
            render.err.print(Text(f"findings: {ids}", style="bold"))


def _document(question: str, loaded: LoadedModel, result: AskResult) -> dict[str, Any]:
    return {
        "question": question,
        "answer": result.answer,
        "model": loaded.name,
        "mode": "tools" if loaded.runtime.tools_enabled else "analysis-only",
        "self_test": loaded.self_test_detail,
        "thread": result.thread_id,
        "limit": result.limit,
        "trace": [asdict(entry) for entry in result.trace],
        "findings": [f.model_dump(mode="json") for f in result.findings],
        "results": [r.model_dump(mode="json") for r in result.results],
    }


def _notice_model(loaded: LoadedModel, quiet: bool) -> None:
    mode = "tools" if loaded.runtime.tools_enabled else "analysis-only"
    _notice(f"model: {loaded.name} ({mode})", quiet)
    if not loaded.runtime.tools_enabled:
        _notice(
            "note: the model failed its tool-call self-test "
            f"({loaded.self_test_detail}); it will answer without running checks",
            quiet,
        )


def _notice(message: str, quiet: bool) -> None:
    if not quiet:
        render.err.print(Text(message, style="dim"))

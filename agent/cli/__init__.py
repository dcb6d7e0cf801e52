"""The ``netwarden`` command line: scripted checks with human, JSON and SARIF output.

Exit codes: 0 the checks ran; 1 a finding at or above ``--fail-on``; 2 a usage,
config or scope error (an out-of-scope target is refused before any packet is sent).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import click

from agent.cli import render
from agent.settings import Settings, load_settings
from tools import runner
from tools.errors import NetwardenError, ToolMissingError, UsageError
from tools.models import CheckResult, Severity, Status
from tools.report import Command, build_report, report_json, shipped_schema, to_sarif
from tools.targets import parse_ports

log = logging.getLogger(__name__)

SEVERITIES = [s.value for s in Severity]


def main() -> None:
    """Entry point: map errors to exit codes, never a traceback for bad input."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        render.error("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except UsageError as exc:
        render.error(str(exc))
        sys.exit(2)
    except (ToolMissingError, NetwardenError) as exc:
        render.error(str(exc))
        sys.exit(2 if isinstance(exc, ToolMissingError) else 1)


class _LazyGroup(click.Group):
    """Imports the model-backed commands only when they run.

    ``ask`` and ``model`` pull in llama.cpp, LangChain and huggingface_hub; the
    scripted checks start in a fraction of that time without them.
    """

    lazy = {
        "ask": "agent.cli.askcmd:ask",
        "model": "agent.cli.modelcmd:model",
        "daemon": "agent.cli.daemoncmd:daemon",
        "history": "agent.cli.daemoncmd:history",
        "status": "agent.cli.daemoncmd:status",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, _, attribute = self.lazy[name].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, name)


@click.group(
    cls=_LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_version("netwarden"), prog_name="netwarden")
@click.option(
    "-v", "--verbose", count=True, help="More logging on stderr (-vv: debug)."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default: ~/.config/netwarden/config.toml).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, config_path: Path | None) -> None:
    """netwarden: certificates, post-quantum posture and Nmap, from your machine.

    Without a command, opens the terminal app (the same as `netwarden tui`).
    """
    ctx.obj = load_settings(config_path)
    ctx.meta["config_path"] = config_path
    if ctx.invoked_subcommand is None:
        _open_tui(ctx.obj, config_path, model_path=None)
        return
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="GGUF model file (default: [model] path, else the embedded model).",
)
@click.pass_context
def tui(ctx: click.Context, model_path: Path | None) -> None:
    """Open the terminal app: ask the assistant, run checks, approve scans."""
    _open_tui(ctx.obj, ctx.meta.get("config_path"), model_path)


def _open_tui(
    settings: Settings, config_path: Path | None, model_path: Path | None
) -> None:
    """Run the TUI; Textual and the model stack are imported only here."""
    from textual.logging import TextualHandler

    from agent.tui.app import NetwardenApp

    # the terminal belongs to the app: log records go to Textual's devtools
    logging.basicConfig(level=logging.INFO, handlers=[TextualHandler()], force=True)

    NetwardenApp(settings, config_path=config_path, model_path=model_path).run()


def _batch_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options every check command shares."""
    options = [
        click.argument("targets", nargs=-1),
        click.option(
            "-i",
            "--input",
            "input_file",
            type=click.File("r"),
            help="Read targets from a file, one per line ('-' for stdin).",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Print one JSON document."
        ),
        click.option(
            "--sarif",
            "sarif_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write findings as SARIF 2.1.0 to this file.",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(SEVERITIES),
            help="Exit 1 if a finding is at or above this severity.",
        ),
        click.option(
            "--timeout", type=click.FloatRange(0.1, 120), help="Seconds per probe."
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 256), help="Targets at once."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.command()
@_batch_options
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sni", help="Server name to send (default: the target's host name).")
@click.option(
    "--warn-days",
    help="Expiry thresholds in days for low,medium,high findings (default 30,14,7).",
)
@click.pass_obj
def tls(
    settings: Settings,
    /,
    ca_file: Path | None,
    sni: str | None,
    warn_days: str | None,
    **common: Any,
) -> None:
    """Inspect the certificate chain, trust and protocol versions of TARGETS."""
    options = _options(settings, common, ca_file=ca_file, sni=sni, warn_days=warn_days)
    _run("tls", lambda raw: runner.run_tls(raw, options), options, common)


@cli.command()
@_batch_options
@click.option("--ssh", "force_ssh", is_flag=True, help="Treat targets as SSH servers.")
@click.option("--sni", help="Server name to send (default: the target's host name).")
@click.pass_obj
def pq(settings: Settings, /, force_ssh: bool, sni: str | None, **common: Any) -> None:
    """Post-quantum posture of TLS and SSH TARGETS: groups, preference, verdict."""
    options = _options(settings, common, sni=sni)
    options.force_ssh = force_ssh
    _run("pq", lambda raw: runner.run_pq(raw, options), options, common)


@cli.command()
@_batch_options
@click.option(
    "--profile",
    type=click.Choice(["quick", "services", "vuln"]),
    default="quick",
    show_default=True,
    help="quick: top ports; services: version detection; vuln: vuln scripts.",
)
@click.option(
    "--ports", help="Ports to scan instead of the profile's, e.g. 22,443,8000-8010."
)
@click.pass_obj
def scan(settings: Settings, /, profile: str, ports: str | None, **common: Any) -> None:
    """Nmap scan of TARGETS (hosts or CIDR ranges inside the scope)."""
    options = _options(settings, common)
    port_list = parse_ports(ports) if ports else None
    _run(
        "scan",
        lambda raw: runner.run_scan(raw, options, profile=profile, ports=port_list),
        options,
        common,
    )


@cli.command()
@_batch_options
@click.option("--ports", help="Ports to discover, e.g. 22,443 (default: top 100).")
@click.pass_obj
def check(settings: Settings, /, ports: str | None, **common: Any) -> None:
    """Discover services with Nmap, then run tls and pq on every TLS or SSH port."""
    options = _options(settings, common)
    port_list = parse_ports(ports) if ports else None
    _run(
        "check", lambda raw: runner.run_check(raw, options, port_list), options, common
    )


@cli.command()
def schema() -> None:
    """Print the JSON Schema of --json output."""
    click.echo(shipped_schema(), nl=False)


@cli.command()
@click.option(
    "--base-port",
    type=click.IntRange(0, 65000),
    default=0,
    help="First port to use (default: free ports).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Run every check and one question to the local model, then stop.",
)
@click.pass_obj
def lab(settings: Settings, base_port: int, demo: bool) -> None:
    """Start local practice endpoints on 127.0.0.1 (TLS, post-quantum, SSH)."""
    from agent.cli.labcmd import run_lab

    run_lab(settings, base_port=base_port, demo=demo)


# --- plumbing


def _options(
    settings: Settings,
    common: dict[str, Any],
    *,
    ca_file: Path | None = None,
    sni: str | None = None,
    warn_days: str | None = None,
) -> runner.Options:
    thresholds = settings.tls.thresholds()
    if warn_days:
        thresholds = _parse_thresholds(warn_days)
    return runner.Options(
        scope=settings.build_scope(),
        timeout=common["timeout"] or settings.checks.timeout,
        ca_file=ca_file or settings.tls.ca_file,
        thresholds=thresholds,
        server_name=sni,
        concurrency=common["concurrency"] or settings.checks.concurrency,
    )


def _parse_thresholds(text: str) -> Any:
    from agent.settings import TlsSettings

    try:
        days = [int(part) for part in text.split(",")]
        return TlsSettings(expiry_days=days).thresholds()
    except ValueError as exc:
        raise UsageError(
            f"--warn-days {text!r}: give three descending numbers"
        ) from exc


def _targets(common: dict[str, Any]) -> list[str]:
    targets = list(common["targets"])
    if common["input_file"] is not None:
        lines = (line.split("#", 1)[0].strip() for line in common["input_file"])
        targets.extend(line for line in lines if line)
    if not targets:
        raise UsageError("no targets: give TARGET arguments or --input FILE")
    return targets


def _run(
    command: Command,
    check: Callable[[str], Awaitable[CheckResult]],
    options: runner.Options,
    common: dict[str, Any],
) -> None:
    targets = _targets(common)
    _validate_targets(command, targets)
    with render.progress(len(targets), quiet=common["as_json"]) as advance:
        results = asyncio.run(
            runner.run_batch(check, targets, options.concurrency, on_result=advance)
        )
    report = build_report(command, package_version("netwarden"), results)
    if common["as_json"]:
        click.echo(report_json(report))
    else:
        render.results(command, results)
    if common["sarif_file"] is not None:
        common["sarif_file"].write_text(json.dumps(to_sarif(report), indent=2) + "\n")
    sys.exit(_exit_code(results, common["fail_on"]))


def _validate_targets(command: Command, targets: list[str]) -> None:
    """Parse every target before anything runs, so a typo sends nothing."""
    from tools.targets import parse_target

    for raw in targets:
        if command == "scan" and "/" in raw:
            continue
        parse_target(raw)


def _exit_code(results: list[CheckResult], fail_on: str | None) -> int:
    if any(r.status is Status.OUT_OF_SCOPE for r in results):
        return 2
    if fail_on is None:
        return 0
    threshold = Severity(fail_on).rank
    worst = [r.worst_severity() for r in results]
    return 1 if any(w is not None and w.rank >= threshold for w in worst) else 0

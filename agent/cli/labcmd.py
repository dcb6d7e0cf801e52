"""``netwarden lab``: practice endpoints on 127.0.0.1, and the offline demo."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import threading
from collections.abc import Awaitable

from rich.table import Table
from rich.text import Text

from agent.cli import render
from agent.settings import Settings
from tools import runner
from tools.lab import Lab, LabEndpoint
from tools.models import CheckResult
from tools.scope import Scope
from tools.targets import format_ports


def run_lab(settings: Settings, base_port: int, demo: bool) -> None:
    with Lab(base_port=base_port) as lab:
        render.out.print(_endpoint_table(lab))
        for name, why in lab.skipped.items():
            render.err.print(Text(f"skipped {name}: {why}", style="yellow"))
        if demo:
            _demo(lab)
            _demo_question(settings, lab)
            return
        render.out.print(_examples(lab), soft_wrap=True)
        render.out.print("Press Ctrl-C to stop the lab.")
        _wait_for_interrupt()


def _demo_question(settings: Settings, lab: Lab) -> None:
    """Ask the local model about the post-quantum endpoint, offline."""
    from agent.cli.askcmd import answer_question
    from agent.loop import reject_all

    question = f"Is 127.0.0.1:{lab.endpoints['pq-tls'].port} quantum safe?"
    render.out.rule(f"netwarden ask {question!r}")
    answer_question(settings, question, approver=reject_all("the demo runs no scans"))


def _endpoint_table(lab: Lab) -> Table:
    table = Table(title=f"netwarden lab (CA: {lab.ca_file})", title_justify="left")
    for column in ("endpoint", "address", "what it is"):
        table.add_column(column)
    for endpoint in lab.endpoints.values():
        table.add_row(endpoint.name, _address(endpoint), endpoint.description)
    return table


def _examples(lab: Lab) -> str:
    tls = [e for e in lab.endpoints.values() if e.protocol == "tls"]
    ssh = [e for e in lab.endpoints.values() if e.protocol == "ssh"]
    ports = format_ports(sorted(e.port for e in lab.endpoints.values()))
    lines = ["Try:"]
    if tls:
        lines.append(f"  netwarden pq {_address(tls[0])}")
        lines.append(f"  netwarden tls {_address(tls[0])} --ca-file {lab.ca_file}")
    if ssh:
        lines.append(f"  netwarden pq {_address(ssh[0])} --ssh")
    lines.append(f"  netwarden scan 127.0.0.1 --ports {ports} --profile services")
    return "\n".join(lines)


def _demo(lab: Lab) -> None:
    """Run pq on every endpoint, tls on every TLS one, and a port scan."""
    options = runner.Options(scope=Scope.default(), ca_file=lab.ca_file)
    labels, results = zip(*asyncio.run(_demo_checks(lab, options)), strict=True)
    render.results("demo", results)
    summary = Table(title="Summary", title_justify="left")
    for column in ("endpoint", "check", "status", "verdict / worst finding"):
        summary.add_column(column)
    for label, result in zip(labels, results, strict=True):
        check = getattr(result, "kind", "")
        summary.add_row(label, check, result.status.value, headline(result))
    render.out.print(summary)


async def _demo_checks(
    lab: Lab, options: runner.Options
) -> list[tuple[str, CheckResult]]:
    endpoints = list(lab.endpoints.values())
    labels = [e.name for e in endpoints]
    jobs: list[Awaitable[CheckResult]] = [
        runner.run_pq(_address(e), _with_ssh(options, e)) for e in endpoints
    ]
    for endpoint in endpoints:
        if endpoint.protocol == "tls":
            labels.append(endpoint.name)
            jobs.append(runner.run_tls(_address(endpoint), options))
    if shutil.which("nmap"):
        ports = sorted(e.port for e in endpoints)
        labels.append("all endpoints")
        jobs.append(runner.run_scan("127.0.0.1", options, "services", ports))
    results: list[CheckResult] = list(await asyncio.gather(*jobs))
    return list(zip(labels, results, strict=True))


def _with_ssh(options: runner.Options, endpoint: LabEndpoint) -> runner.Options:
    if endpoint.protocol != "ssh":
        return options
    return runner.Options(**{**options.__dict__, "force_ssh": True})


def headline(result: CheckResult) -> str:
    """One line: the post-quantum verdict, else the worst findings."""
    verdict = getattr(result, "verdict", None)
    if verdict is not None:
        overall, kex = verdict.overall.value, verdict.key_exchange.value
        return f"overall {overall}, key exchange {kex}"
    worst = result.worst_severity()
    ids = ", ".join(sorted({f.id for f in result.findings if f.severity is worst}))
    return f"{worst.value}: {ids}" if worst else (result.error or "no findings")


def _address(endpoint: LabEndpoint) -> str:
    return f"{endpoint.host}:{endpoint.port}"


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()

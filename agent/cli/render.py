"""Human output for the command line: rich tables on stdout, messages on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from agent.styles import OUTCOME_STYLE, POSTURE_STYLE, SEVERITY_STYLE
from tools.certs.assess import expired_ago
from tools.models import (
    CheckReport,
    CheckResult,
    ClientView,
    Finding,
    Posture,
    PqResult,
    ScanResult,
    Severity,
    Status,
    TlsResult,
)

# markup=False: certificate fields and banners are peer data and may contain
# "[...]" that rich would otherwise read as markup.
out = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def error(message: str) -> None:
    err.print(Text("error: ", style="bold red") + Text(message))


@contextmanager
def progress(total: int, quiet: bool) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr for batches, when stderr is a terminal."""
    if quiet or total < 2 or not err.is_terminal:
        yield lambda _result: None
        return
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    )
    with bar:
        task = bar.add_task("checking", total=total)
        yield lambda _result: bar.advance(task)


def results(command: str, items: Sequence[CheckResult]) -> None:
    for item in items:
        out.print(render(item))


def render(item: CheckResult) -> Panel:
    title = Text(f"{item.target}", style="bold")
    if item.address and item.address != item.host:
        title.append(f"  ({item.address})", style="dim")
    if item.status is not Status.OK:
        body: Any = Text(f"{item.status.value}: {item.error}", style="red")
    elif isinstance(item, PqResult):
        body = _pq(item)
    elif isinstance(item, TlsResult):
        body = _tls(item)
    elif isinstance(item, ScanResult):
        body = _ports(item)
    elif isinstance(item, CheckReport):
        body = _check(item)
    else:
        body = Text("")
    return Panel(body, title=title, title_align="left", border_style=_border(item))


def _border(item: CheckResult) -> str:
    worst = item.worst_severity()
    if item.status is not Status.OK:
        return "red"
    if worst is None or worst.rank <= Severity.INFO.rank:
        return "green"
    return "yellow" if worst.rank <= Severity.MEDIUM.rank else "red"


# --- pq


def _pq(item: PqResult) -> Group:
    parts: list[Any] = []
    if item.tls is not None:
        parts.append(_group_matrix(item))
        parts.append(_client_views(item))
    if item.ssh is not None:
        parts.append(_ssh(item))
    if item.verdict is not None:
        parts.append(_verdict(item))
    parts.append(_findings(item.findings))
    return Group(*parts)


def _group_matrix(item: PqResult) -> Table:
    assert item.tls is not None
    tls = item.tls
    table = Table(
        title=f"Key-exchange groups ({tls.max_version or 'no TLS'})",
        title_justify="left",
        expand=False,
    )
    for column in ("group", "kind", "server", "preference"):
        table.add_column(column)
    for probe in tls.groups:
        rank = (
            tls.preference.index(probe.name) + 1
            if probe.name in tls.preference
            else None
        )
        style = OUTCOME_STYLE.get(probe.outcome, "")
        name_style = (
            "bold green" if probe.outcome == "supported" and "pq" in probe.kind else ""
        )
        table.add_row(
            Text(probe.name, style=name_style),
            probe.kind,
            Text(probe.outcome, style=style),
            str(rank) if rank else "",
        )
    return table


def _client_views(item: PqResult) -> Table:
    assert item.tls is not None
    table = Table(title="What clients get", title_justify="left")
    table.add_column("client (offers; key shares)", overflow="fold")
    table.add_column("gets", overflow="fold")
    table.add_column("cipher", overflow="fold")
    for view in item.tls.clients:
        who = Text(view.client, style="bold")
        who.append(f"\noffers {', '.join(view.offered)}", style="dim")
        who.append(f"\nshares {', '.join(view.key_shares) or 'none'}", style="dim")
        gets = Text(view.selected_group or "-", style=_group_style(item, view))
        if view.hello_retry:
            gets.append("\nafter a retry", style="dim")
        table.add_row(who, gets, view.cipher or "")
    return table


def _group_style(item: PqResult, view: ClientView) -> str:
    assert item.tls is not None
    return "bold green" if view.selected_group in item.tls.pq_groups else ""


def _ssh(item: PqResult) -> Table:
    assert item.ssh is not None
    ssh = item.ssh
    table = Table(title=f"SSH {ssh.software}", title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    kex = Text()
    for i, name in enumerate(ssh.kex):
        kex.append(", " if i else "")
        kex.append(name, style="bold green" if name in ssh.pq_kex else "")
    table.add_row("key exchange", kex)
    table.add_row("host keys", ", ".join(ssh.host_key_algorithms))
    table.add_row("ciphers", ", ".join(ssh.ciphers))
    return table


def _verdict(item: PqResult) -> Group:
    assert item.verdict is not None
    verdict = item.verdict
    table = Table(title="Post-quantum verdict", title_justify="left")
    table.add_column("axis")
    table.add_column("verdict")
    table.add_column("why")
    for axis in ("key_exchange", "authentication", "symmetric", "overall"):
        posture: Posture = getattr(verdict, axis)
        table.add_row(
            axis.replace("_", " "),
            Text(posture.value, style=POSTURE_STYLE[posture]),
            verdict.reasons.get(axis, ""),
        )
    fixes = [fix for axis in verdict.remediation.values() for fix in axis]
    if not fixes:
        return Group(table)
    text = Text("How to fix", style="bold")
    for fix in dict.fromkeys(fixes):
        text.append(f"\n  • {fix}")
    return Group(table, text)


# --- tls


def _tls(item: TlsResult) -> Group:
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    cert = item.certificate
    if cert is not None:
        expiry = Text(f"{cert.not_after}  ({cert.days_left} days left)")
        if cert.days_left < 0:
            expiry = Text(f"{cert.not_after}  (EXPIRED {expired_ago(cert.days_left)})")
            expiry.stylize("bold red")
        elif cert.days_left <= 30:
            expiry.stylize("yellow")
        key = " ".join(
            str(p) for p in (cert.key_type, cert.key_size or cert.key_curve) if p
        )
        for field, value in (
            ("subject", cert.subject),
            ("issuer", cert.issuer),
            ("names", ", ".join(cert.sans)),
            ("expires", expiry),
            ("key", key),
            ("signature", f"{cert.signature_algorithm} ({cert.signature_oid})"),
            ("serial", cert.serial),
        ):
            table.add_row(field, value)
    if item.trust is not None:
        trust = item.trust
        label = "trusted" if trust.trusted else f"NOT trusted: {trust.reason}"
        table.add_row(
            "trust",
            Text(f"{label} [{trust.store}]", style="green" if trust.trusted else "red"),
        )
        table.add_row("host name", "matches" if trust.hostname_match else "MISMATCH")
        table.add_row(
            "chain",
            f"{len(item.chain)} certificate(s)"
            + ("" if trust.chain_in_order else ", out of order"),
        )
    if item.connection is not None:
        conn = item.connection
        table.add_row("connection", f"{conn.protocol} {conn.cipher} {conn.group or ''}")
        table.add_row("OCSP stapling", "yes" if conn.ocsp_stapled else "no")
    if item.protocols:
        table.add_row(
            "protocols",
            "  ".join(
                f"{name} {'yes' if ok else 'no'}" for name, ok in item.protocols.items()
            ),
        )
    return Group(table, _findings(item.findings))


# --- scan and check


def _ports(item: ScanResult) -> Table:
    table = Table(title=f"nmap {item.profile}: {item.command}", title_justify="left")
    for column in ("host", "port", "state", "service", "version"):
        table.add_column(column)
    for port in item.ports:
        version = " ".join(p for p in (port.product, port.version, port.extra) if p)
        service = port.service + (f" ({port.tunnel})" if port.tunnel else "")
        table.add_row(
            port.host,
            f"{port.port}/{port.protocol}",
            Text(port.state, style="green" if port.state == "open" else "dim"),
            service,
            version,
        )
    if not item.ports:
        table.caption = "no open ports found"
    return table


def _check(item: CheckReport) -> Group:
    parts: list[Any] = []
    if item.scan is not None:
        parts.append(_ports(item.scan))
    parts.extend(render(sub) for sub in [*item.tls, *item.pq])
    return Group(*parts)


def _findings(findings: list[Finding]) -> Any:
    if not findings:
        return Text("no findings", style="green")
    table = Table(title="Findings", title_justify="left")
    for column in ("severity", "id", "detail"):
        table.add_column(column)
    ordered = sorted(findings, key=lambda f: -f.severity.rank)
    for f in ordered:
        table.add_row(
            Text(f.severity.value, style=SEVERITY_STYLE[f.severity]),
            f.id,
            f"{f.title}. {f.detail}",
        )
    return table

"""Result views: each typed check result rendered for people inside a tool card.

:func:`result_view` picks the view for a result. Views are plain containers of
:class:`~textual.widgets.Static` widgets holding rich tables, so they size to their
content inside a scrolling chat. Every value that came from a peer (certificate
fields, banners, service names) is wrapped in :class:`~rich.text.Text`, never parsed
as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from agent.styles import OUTCOME_STYLE, POSTURE_STYLE, SEVERITY_STYLE
from tools.models import (
    AnyResult,
    CertificateInfo,
    CheckReport,
    CheckResult,
    Finding,
    Posture,
    PqResult,
    ScanResult,
    Status,
    TlsResult,
)

OUTCOME_LABEL = {"supported": "yes", "not-supported": "no", "error": "error"}
PQ_STYLE = "bold green"
AXES = ("key_exchange", "authentication", "symmetric", "overall")


def result_view(result: AnyResult) -> Widget:
    """The view of one result: its tables, then its findings."""
    return ResultView(*_sections(result), classes=f"result-view -{result.kind}")


class ResultView(Vertical):
    """A stack of rendered sections of one result."""


class Section(Static):
    """One rich renderable (usually a table) of a result view."""


def _sections(result: CheckResult) -> list[Widget]:
    if result.status is not Status.OK:
        return [_failure(result)]
    if isinstance(result, TlsResult):
        body = [certificate_table(result)]
    elif isinstance(result, PqResult):
        body = pq_sections(result)
    elif isinstance(result, ScanResult):
        body = [Section(ports_table(result), classes="ports")]
    elif isinstance(result, CheckReport):
        return check_sections(result)
    else:
        body = []
    return [*body, Section(findings_table(result.findings), classes="findings")]


def _failure(result: CheckResult) -> Widget:
    text = Text(f"{result.status.value}: ", style="bold red")
    text.append(result.error or "no detail")
    return Section(text, classes="failure")


# --- certificates


def certificate_table(result: TlsResult) -> Widget:
    """Subject, issuer, names, expiry, key, signature, trust, host name, connection."""
    table = _fields_table()
    cert = result.certificate
    if cert is not None:
        _certificate_rows(table, cert)
    if result.trust is not None:
        _trust_rows(table, result)
    if result.connection is not None:
        conn = result.connection
        parts = (conn.protocol, conn.cipher, conn.group)
        table.add_row("connection", _t(" ".join(p for p in parts if p)))
    return Section(table, classes="certificate")


def _certificate_rows(table: Table, cert: CertificateInfo) -> None:
    key = " ".join(
        str(p) for p in (cert.key_type, cert.key_size or cert.key_curve) if p
    )
    signature = _t(cert.signature_algorithm, PQ_STYLE if cert.post_quantum else "")
    table.add_row("subject", _t(cert.subject))
    table.add_row("issuer", _t(cert.issuer))
    table.add_row("names", _t(", ".join(cert.sans) or "none"))
    table.add_row("expires", expiry_text(cert))
    table.add_row("key", _t(key, PQ_STYLE if cert.post_quantum else ""))
    table.add_row("signature", signature)


def expiry_text(cert: CertificateInfo) -> Text:
    """The expiry date with days left: red once expired, yellow within 30 days."""
    day = cert.not_after[:10]
    if cert.days_left < 0:
        return Text(f"{day}  EXPIRED {-cert.days_left} days ago", style="bold red")
    style = "yellow" if cert.days_left <= 30 else "green"
    return Text(f"{day}  {cert.days_left} days left", style=style)


def _trust_rows(table: Table, result: TlsResult) -> None:
    assert result.trust is not None
    trust = result.trust
    if trust.trusted:
        label = Text("trusted", style="green")
    else:
        label = Text(f"NOT trusted: {trust.reason or 'unknown reason'}", style="red")
    chain = f"{len(result.chain)} certificate(s)"
    if not trust.chain_in_order:
        chain += ", out of order"
    matches = trust.hostname_match
    table.add_row("trust", label)
    table.add_row("host name", Text(*_yes_no(matches, "matches", "MISMATCH")))
    table.add_row("chain", _t(chain))


# --- post-quantum


def pq_sections(result: PqResult) -> list[Widget]:
    """The group matrix and what clients get (TLS), the kex list (SSH), the verdict."""
    sections: list[Widget] = []
    if result.verdict is not None:
        sections.append(Section(verdict_summary(result), classes="pq-summary"))
    if result.tls is not None:
        sections.append(Section(group_matrix(result), classes="pq-matrix"))
        if result.tls.clients:
            sections.append(Section(client_views(result), classes="pq-clients"))
    if result.ssh is not None:
        sections.append(Section(ssh_kex(result), classes="pq-ssh"))
    if result.verdict is not None:
        sections.append(Section(verdict_table(result), classes="pq-verdict"))
    return sections


def group_matrix(result: PqResult) -> Table:
    """Group, kind, supported, preference rank; supported PQ groups highlighted."""
    assert result.tls is not None
    tls = result.tls
    title = f"Key-exchange groups (max {tls.max_version or 'unknown'})"
    table = _table(title, ("group", "kind", "supported", "rank"))
    for probe in tls.groups:
        pq = probe.outcome == "supported" and probe.kind.startswith("pq")
        rank = (
            tls.preference.index(probe.name) + 1 if probe.name in tls.preference else 0
        )
        table.add_row(
            _t(probe.name, PQ_STYLE if pq else ""),
            _t(probe.kind, "cyan" if probe.kind.startswith("pq") else "dim"),
            _t(OUTCOME_LABEL[probe.outcome], OUTCOME_STYLE[probe.outcome]),
            _t(str(rank) if rank else "-"),
        )
    return table


def client_views(result: PqResult) -> Table:
    """What each imitated client ends up with."""
    assert result.tls is not None
    pq_groups = set(result.tls.pq_groups)
    table = _table("What clients get", ("client", "gets", "cipher"))
    for view in result.tls.clients:
        gets = _t(
            view.selected_group or "-",
            PQ_STYLE if view.selected_group in pq_groups else "",
        )
        if view.hello_retry:
            gets.append(" (retry)", style="dim")
        table.add_row(_t(view.client), gets, _t(view.cipher or ""))
    return table


def ssh_kex(result: PqResult) -> Text:
    """The server's key-exchange methods in its order, PQ ones highlighted."""
    assert result.ssh is not None
    ssh = result.ssh
    text = Text(f"SSH {ssh.software or ssh.banner}", style="bold")
    text.append("\nkey exchange, in the server's order:\n", style="italic")
    for rank, name in enumerate(ssh.kex):
        text.append(", " if rank else "")
        text.append(name, style=PQ_STYLE if name in ssh.pq_kex else "")
    if ssh.host_key_algorithms:
        text.append("\nhost keys: ", style="italic")
        text.append(", ".join(ssh.host_key_algorithms))
    return text


def verdict_summary(result: PqResult) -> Table:
    """The posture per axis in one row, colored, above the details."""
    assert result.verdict is not None
    table = Table(box=None, expand=False, padding=(0, 2, 0, 0))
    for axis in AXES:
        table.add_column(axis.replace("_", " "), header_style="bold")
    postures: list[Posture] = [getattr(result.verdict, axis) for axis in AXES]
    table.add_row(*(_t(p.value, POSTURE_STYLE[p]) for p in postures))
    return table


def verdict_table(result: PqResult) -> Table:
    """The posture per axis, with the reason."""
    assert result.verdict is not None
    verdict = result.verdict
    table = _table("Post-quantum verdict", ("axis", "verdict", "why"))
    for axis in AXES:
        posture: Posture = getattr(verdict, axis)
        table.add_row(
            _t(axis.replace("_", " "), "bold" if axis == "overall" else ""),
            _t(posture.value, POSTURE_STYLE[posture]),
            _t(verdict.reasons.get(axis, "")),
        )
    return table


# --- scans and checks


def ports_table(result: ScanResult) -> Table:
    """Open ports: host, port, state, service, version."""
    table = _table(
        f"nmap {result.profile}", ("host", "port", "state", "service", "version")
    )
    for port in result.ports:
        version = " ".join(p for p in (port.product, port.version, port.extra) if p)
        service = port.service + (f" ({port.tunnel})" if port.tunnel else "")
        state_style = "green" if port.state == "open" else "dim"
        table.add_row(
            _t(port.host),
            _t(f"{port.port}/{port.protocol}"),
            _t(port.state, state_style),
            _t(service),
            _t(version),
        )
    if not result.ports:
        table.caption = "no open ports found"
    return table


def check_sections(result: CheckReport) -> list[Widget]:
    """The scan table, then a titled view of every TLS and post-quantum result."""
    sections: list[Widget] = []
    if result.scan is not None:
        sections.append(Section(ports_table(result.scan), classes="ports"))
    subs: list[TlsResult | PqResult] = [*result.tls, *result.pq]
    for sub in subs:
        title = Text(f"{sub.kind} {sub.target}", style="bold")
        sections.append(Section(title, classes="sub-title"))
        sections.extend(_sections(sub))
    if not result.tls and not result.pq:
        sections.append(Section(findings_table(result.findings), classes="findings"))
    return sections


def findings_table(findings: Iterable[Finding]) -> RenderableType:
    """Findings, worst first; a green line when there are none."""
    ordered = sorted(findings, key=lambda f: -f.severity.rank)
    if not ordered:
        return Text("no findings", style="green")
    table = _table("Findings", ("severity", "finding"))
    for item in ordered:
        what = Text(item.title, style="bold")
        what.append(f"  {item.id}", style="dim")
        table.add_row(_t(item.severity.value, SEVERITY_STYLE[item.severity]), what)
    return table


# --- helpers


def _t(value: Any, style: str = "") -> Text:
    """Peer data as plain text: never read as markup."""
    return Text(str(value), style=style)


def _yes_no(flag: bool, yes: str, no: str) -> tuple[str, str]:
    return (yes, "green") if flag else (no, "bold red")


def _table(title: str, columns: Iterable[str]) -> Table:
    table = Table(
        title=_t(title),
        title_justify="left",
        expand=False,
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _fields_table() -> Table:
    table = Table(show_header=False, box=None, expand=False, padding=(0, 1))
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    return table

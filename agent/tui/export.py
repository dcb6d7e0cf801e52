"""The session report behind ``/export``: findings and results as Markdown and HTML.

Pure functions from typed results to text; the app decides where the files go.
Findings are deduplicated by (target, id) and sorted by severity, worst first, the
same way the findings panel shows them. Peer data (certificate names, banners) is
escaped in the HTML report and kept out of Markdown table syntax.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tools.models import (
    AnyResult,
    CheckReport,
    Finding,
    PqResult,
    ScanResult,
    TlsResult,
)


@dataclass(frozen=True)
class ReportFinding:
    """One finding of the session with the target it was found on."""

    target: str
    finding: Finding


def collect_findings(results: Iterable[AnyResult]) -> list[ReportFinding]:
    """Every finding once per (target, id), worst severity first."""
    seen: dict[tuple[str, str], ReportFinding] = {}
    for result in results:
        for item in result.findings:
            seen.setdefault(
                (result.target, item.id), ReportFinding(result.target, item)
            )
    return sorted(
        seen.values(),
        key=lambda f: (-f.finding.severity.rank, f.target, f.finding.id),
    )


def markdown_report(results: Sequence[AnyResult], *, model: str, generated: str) -> str:
    """The session as a Markdown document."""
    findings = collect_findings(results)
    lines = [
        "# netwarden session report",
        "",
        f"Generated {generated} with model {model}.",
        "",
        f"## Findings ({len(findings)})",
        "",
    ]
    lines += _markdown_findings(findings) if findings else ["No findings.", ""]
    lines += [f"## Checks ({len(results)})", ""]
    lines += [f"- {_md(r.target)}: {r.kind} {r.status}{_summary(r)}" for r in results]
    lines.append("")
    for found in findings:
        lines += _markdown_detail(found)
    return "\n".join(lines).rstrip() + "\n"


def _markdown_findings(findings: list[ReportFinding]) -> list[str]:
    rows = ["| severity | id | target | title |", "|---|---|---|---|"]
    rows += [
        f"| {f.finding.severity} | `{f.finding.id}` | {_md(f.target)} "
        f"| {_md(f.finding.title)} |"
        for f in findings
    ]
    return [*rows, ""]


def _markdown_detail(found: ReportFinding) -> list[str]:
    item = found.finding
    lines = [f"### {item.id} on {_md(found.target)}", "", _md(item.detail), ""]
    if item.remediation:
        lines += [f"Remediation: {_md(item.remediation)}", ""]
    return lines


def html_report(results: Sequence[AnyResult], *, model: str, generated: str) -> str:
    """The session as a standalone HTML page."""
    findings = collect_findings(results)
    rows = "".join(
        f"<tr class='{f.finding.severity}'><td>{f.finding.severity}</td>"
        f"<td><code>{_h(f.finding.id)}</code></td><td>{_h(f.target)}</td>"
        f"<td>{_h(f.finding.title)}</td><td>{_h(f.finding.detail)}</td>"
        f"<td>{_h(f.finding.remediation)}</td></tr>"
        for f in findings
    )
    checks = "".join(
        f"<li>{_h(r.target)}: {r.kind} {r.status}{_h(_summary(r))}</li>"
        for r in results
    )
    return _PAGE.format(
        generated=_h(generated),
        model=_h(model),
        count=len(findings),
        rows=rows or "<tr><td colspan='6'>No findings.</td></tr>",
        checks=checks,
    )


def _summary(result: AnyResult) -> str:
    """A few words on what a check measured."""
    if isinstance(result, PqResult) and result.verdict is not None:
        return f", key exchange {result.verdict.key_exchange}"
    if isinstance(result, TlsResult) and result.certificate is not None:
        return f", certificate expires in {result.certificate.days_left} days"
    if isinstance(result, ScanResult):
        return f", {len(result.ports)} open ports"
    if isinstance(result, CheckReport):
        return f", {len(result.tls)} TLS and {len(result.pq)} post-quantum checks"
    return f" ({result.error})" if result.error else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _h(text: str) -> str:
    return html.escape(text, quote=True)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>netwarden session report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }}
tr.critical td, tr.high td {{ background: #fdd; }}
tr.medium td {{ background: #ffd; }}
</style></head><body>
<h1>netwarden session report</h1>
<p>Generated {generated} with model {model}.</p>
<h2>Findings ({count})</h2>
<table><tr><th>severity</th><th>id</th><th>target</th><th>title</th><th>detail</th>
<th>remediation</th></tr>
{rows}</table>
<h2>Checks</h2>
<ul>{checks}</ul>
</body></html>
"""

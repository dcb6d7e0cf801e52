"""TUI widgets with real results from the lab: tool cards, findings, the approval modal.

Results come from running the checks against the practice lab. Snapshot tests pin
everything time-dependent (ports, dates, durations) on a copy of a real result so
the pictures are the same on every run.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static, TextArea

from agent.loop import ApprovalRequest
from agent.tui.modals import ApprovalOutcome, ApprovalScreen
from agent.tui.widgets import STYLESHEET, FindingsPanel, ToolCard, result_view
from agent.tui.widgets.results import Section
from tools import runner
from tools.findings import finding
from tools.lab import Lab
from tools.models import (
    AnyResult,
    CertificateInfo,
    CheckReport,
    PqResult,
    ScanResult,
    Status,
    TlsResult,
)
from tools.scope import Scope

SIZES = [(80, 24), (120, 40)]
SCAN_REQUEST = ApprovalRequest(
    call_id="call-7",
    name="nmap_scan",
    args={"target": "127.0.0.1", "profile": "quick", "ports": "1-1024"},
    description="Active network scan: needs approval\n\nTool: nmap_scan",
)


# --- real results from the lab


def _run(lab: Lab, check: str, endpoint: str, scheme: str = "") -> AnyResult:
    options = runner.Options(ca_file=lab.ca_file)
    target = f"{scheme}localhost:{lab.endpoints[endpoint].port}"
    if check == "pq":
        return asyncio.run(runner.run_pq(target, options))
    return asyncio.run(runner.run_tls(target, options))


@pytest.fixture(scope="module")
def pq_result(lab: Lab) -> PqResult:
    result = _run(lab, "pq", "pq-tls")
    assert isinstance(result, PqResult)
    assert result.status is Status.OK
    return result


@pytest.fixture(scope="module")
def expired_result(lab: Lab) -> TlsResult:
    result = _run(lab, "tls", "expired")
    assert isinstance(result, TlsResult)
    assert result.certificate is not None
    return result


@pytest.fixture(scope="module")
def ssh_result(lab: Lab) -> PqResult:
    result = _run(lab, "pq", "ssh-asyncssh", scheme="ssh://")
    assert isinstance(result, PqResult)
    assert result.ssh is not None
    return result


@pytest.fixture(scope="module")
def check_report(lab: Lab) -> CheckReport:
    port = lab.endpoints["pq-tls"].port
    work = runner.run_check("127.0.0.1", runner.Options(), ports=[port])
    return asyncio.run(work)


def _pinned(result: AnyResult) -> AnyResult:
    """A copy of a real result with the run-dependent fields fixed."""
    update: dict[str, Any] = {
        "target": "localhost:4433",
        "port": 4433,
        "duration_ms": 1250.0,
    }
    if isinstance(result, TlsResult) and result.certificate is not None:
        update["certificate"] = _pinned_certificate(result.certificate)
    return result.model_copy(update=update)


def _pinned_certificate(cert: CertificateInfo) -> CertificateInfo:
    days_left = -3 if cert.days_left < 0 else 45
    return cert.model_copy(
        update={
            "not_before": "2026-01-01T00:00:00Z",
            "not_after": "2026-12-01T00:00:00Z",
            "days_left": days_left,
            "serial": "1234",
            "sha256_fingerprint": "00" * 32,
        }
    )


# --- host apps


class CardApp(App[None]):
    """One tool card in a scrolling column, as in the chat pane."""

    CSS_PATH = [STYLESHEET]

    def __init__(self, name: str = "pq_check", result: AnyResult | None = None):
        super().__init__()
        self.tool = name
        self.result = result
        self.selected: list[ToolCard] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            target = self.result.target if self.result else "localhost:4433"
            yield ToolCard("call-1", self.tool, {"target": target}, id="card")

    def on_mount(self) -> None:
        if self.result is not None:
            self.query_one(ToolCard).show_result(self.result, "text for the model")

    def on_tool_card_selected(self, message: ToolCard.Selected) -> None:
        self.selected.append(message.card)


class ApprovalApp(App[None]):
    """Pushes the approval modal on start and keeps its outcome."""

    def __init__(self, request: ApprovalRequest = SCAN_REQUEST) -> None:
        super().__init__()
        self.request = request
        self.outcomes: list[ApprovalOutcome | None] = []

    def on_mount(self) -> None:
        screen = ApprovalScreen(self.request, "127.0.0.1", "127.0.0.0/8")
        self.push_screen(screen, self.outcomes.append)


class FindingsApp(App[None]):
    CSS_PATH = [STYLESHEET]

    def __init__(self) -> None:
        super().__init__()
        self.selected: list[FindingsPanel.FindingSelected] = []

    def compose(self) -> ComposeResult:
        yield FindingsPanel(id="findings")

    def on_findings_panel_finding_selected(
        self, message: FindingsPanel.FindingSelected
    ) -> None:
        self.selected.append(message)


def _text(widget: Widget) -> str:
    """The plain text of a Static's rich content, 100 columns wide."""
    assert isinstance(widget, Static)
    out = io.StringIO()
    Console(width=100, file=out).print(widget.content)
    return out.getvalue()


def _card_text(card: ToolCard) -> str:
    return "\n".join(_text(section) for section in card.query(Section))


# --- tool cards


async def test_card_status_transitions_and_pq_result(pq_result: PqResult) -> None:
    app = CardApp()
    async with app.run_test() as pilot:
        card = app.query_one(ToolCard)
        status = card.query_one(".card-status", Static)
        assert "queued" in str(status.content)
        assert card.has_class("-queued")

        card.set_status("approval")
        assert "waiting for approval" in str(status.content)
        card.set_status("running")
        assert str(status.content).startswith("running 0s")
        await pilot.pause(1.2)
        assert str(status.content).startswith("running 1s")  # the ticker runs

        card.show_result(pq_result, "text")
        await pilot.pause()
        assert card.status == "done"
        assert card.has_class("-done")
        assert not card.has_class("-running")
        matrix = _text(card.query_one(".pq-matrix", Section))
        row = next(line for line in matrix.splitlines() if "X25519MLKEM768" in line)
        assert "pq-hybrid" in row
        assert "yes" in row
        assert " 1 " in row
        verdict = _text(card.query_one(".pq-verdict", Section))
        assert "key exchange" in verdict
        assert "quantum-safe" in verdict


async def test_card_collapses_and_shows_raw_json(pq_result: PqResult) -> None:
    app = CardApp(result=pq_result)
    async with app.run_test() as pilot:
        card = app.query_one(ToolCard)
        body = card.query_one(".card-body")
        raw = card.query_one(".card-json", Static)
        card.focus()
        await pilot.press("enter")
        assert card.has_class("-collapsed")
        assert not body.display
        await pilot.press("space")
        assert body.display

        await pilot.press("j")
        assert raw.display
        assert not body.display
        shown = json.loads(str(raw.content))
        assert PqResult.model_validate(shown) == pq_result
        await pilot.press("j")
        assert body.display
        assert not raw.display

        await pilot.click(ToolCard)
        assert app.selected == [card]


async def test_expired_certificate_card(expired_result: TlsResult) -> None:
    app = CardApp("tls_check", expired_result)
    async with app.run_test():
        card = app.query_one(ToolCard)
        text = _card_text(card)
        assert "EXPIRED" in text
        assert "NOT trusted" in text
        assert "cert-expired" in text
        assert "critical" in text
        assert card.status == "done"


async def test_ssh_card_lists_kex_with_pq_first(ssh_result: PqResult) -> None:
    app = CardApp(result=ssh_result)
    async with app.run_test():
        section = app.query_one(".pq-ssh", Section)
        text = _text(section)
        assert "mlkem768x25519-sha256" in text
        assert "curve25519-sha256" in text
        assert text.index("mlkem768x25519") < text.index("curve25519-sha256")


async def test_check_report_nests_scan_and_checks(check_report: CheckReport) -> None:
    assert check_report.status is Status.OK, check_report.error
    assert check_report.scan is not None
    port = check_report.scan.ports[0].port
    app = CardApp("full_check", check_report)
    async with app.run_test():
        card = app.query_one(ToolCard)
        ports = _text(card.query_one(".ports", Section))
        assert f"{port}/tcp" in ports
        assert card.query(".pq-matrix")
        assert card.query(".certificate")


async def test_failed_refused_and_edited_cards(lab: Lab) -> None:
    scope = runner.Options(scope=Scope.from_entries(["127.0.0.2/32"]))
    refused = await runner.run_tls(f"127.0.0.1:{lab.endpoints['pq-tls'].port}", scope)
    assert refused.status is Status.OUT_OF_SCOPE
    closed = await runner.run_tls("127.0.0.1:1", runner.Options(timeout=2.0))
    assert closed.status is not Status.OK
    app = CardApp("tls_check")
    async with app.run_test() as pilot:
        card = app.query_one(ToolCard)
        status = card.query_one(".card-status", Static)
        card.show_result(closed, "connection refused")
        await pilot.pause()
        assert card.status == "failed"
        assert closed.status.value in _card_text(card)

        card.show_result(refused, "out of scope")
        await pilot.pause()
        assert card.has_class("-refused")
        assert "out-of-scope" in _card_text(card)
        card.show_refused("127.0.0.1 is not in the scope")
        await pilot.pause()
        assert "refused by scope" in str(status.content)
        assert card.has_class("-refused")
        assert not card.has_class("-failed")

        card.set_args({"target": "127.0.0.1:8443"})
        title = card.query_one(".card-title", Static)
        assert "target=127.0.0.1:8443" in str(title.content)


async def test_result_view_of_a_scan(lab: Lab) -> None:
    port = lab.endpoints["pq-tls"].port
    scan = await runner.run_scan("127.0.0.1", runner.Options(), ports=[port])
    assert isinstance(scan, ScanResult)
    assert scan.status is Status.OK
    app = CardApp("nmap_scan", scan)
    async with app.run_test():
        view = app.query_one(".result-view")
        assert view is not None
        assert f"{port}/tcp" in _card_text(app.query_one(ToolCard))
        assert "open" in _card_text(app.query_one(ToolCard))
    assert result_view(scan).has_class("-scan")


# --- findings panel


async def test_findings_sorted_deduplicated_and_selectable() -> None:
    app = FindingsApp()
    async with app.run_test() as pilot:
        panel = app.query_one(FindingsPanel)
        panel.add("a:443", [finding("tls-no-ocsp-stapling", "x")], "card-1")
        panel.add("a:443", [finding("cert-expired", "y")], "card-1")
        panel.add("b:443", [finding("cert-expiring", "z")], "card-2")
        panel.add("a:443", [finding("cert-expired", "again")], "card-3")
        await pilot.pause()

        ids = [(s.target, s.finding.id) for s in panel.findings]
        assert ids == [
            ("a:443", "cert-expired"),
            ("b:443", "cert-expiring"),
            ("a:443", "tls-no-ocsp-stapling"),
        ]
        table = panel.query_one(DataTable)
        assert table.row_count == 3
        assert str(table.get_row_at(0)[0]) == "critical"

        table.focus()
        await pilot.press("down", "enter")
        assert [m.card_id for m in app.selected] == ["card-2"]
        await pilot.press("up", "enter")
        assert app.selected[-1].card_id == "card-3"  # the newest card of a:443

        panel.clear()
        await pilot.pause()
        assert panel.findings == []
        assert table.row_count == 0


# --- approval modal


async def test_approval_approve_and_remember() -> None:
    app = ApprovalApp()
    async with app.run_test() as pilot:
        await pilot.press("s", "a")
        await pilot.pause()
    [outcome] = app.outcomes
    assert outcome is not None
    assert outcome.remember
    assert outcome.decision.kind == "approve"


async def test_approval_reject_with_key_and_escape() -> None:
    for key in ("r", "escape"):
        app = ApprovalApp()
        async with app.run_test() as pilot:
            await pilot.press(key)
            await pilot.pause()
        [outcome] = app.outcomes
        assert outcome is not None
        assert outcome.decision.kind == "reject"
        assert not outcome.remember


async def test_approval_edit_narrows_ports() -> None:
    app = ApprovalApp()
    async with app.run_test() as pilot:
        await pilot.press("e")
        editor = app.screen.query_one(TextArea)
        assert editor.has_focus

        editor.text = json.dumps({"target": "127.0.0.1", "ports": "22,443"})
        await pilot.press("escape")  # leaves the editor, does not reject
        assert app.outcomes == []
        await pilot.press("a")
        await pilot.pause()
    [outcome] = app.outcomes
    assert outcome is not None
    assert outcome.decision.kind == "edit"
    assert outcome.decision.args == {"target": "127.0.0.1", "ports": "22,443"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", "not valid JSON"),
        ('{"target": "127.0.0.1", "ports": "x"}', "ports"),
    ],
)
async def test_approval_edit_rejects_bad_arguments(text: str, error: str) -> None:
    app = ApprovalApp()
    async with app.run_test() as pilot:
        await pilot.press("e")
        app.screen.query_one(TextArea).text = text
        await pilot.press("tab")  # out of the editor to the next control
        await pilot.click("#approve")
        await pilot.pause()
        assert app.outcomes == []
        shown = app.screen.query_one("#args-error", Static)
        assert error in str(shown.content)


# --- snapshots


@pytest.fixture
def pinned(
    pq_result: PqResult, expired_result: TlsResult
) -> Callable[[str], AnyResult]:
    results = {"pq": _pinned(pq_result), "tls": _pinned(expired_result)}
    return results.__getitem__


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_certificate_card(
    snap_compare: Any, pinned: Callable[[str], AnyResult], size: tuple[int, int]
) -> None:
    assert snap_compare(CardApp("tls_check", pinned("tls")), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_pq_matrix_card(
    snap_compare: Any, pinned: Callable[[str], AnyResult], size: tuple[int, int]
) -> None:
    assert snap_compare(CardApp("pq_check", pinned("pq")), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_approval_modal(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(ApprovalApp(), terminal_size=size)

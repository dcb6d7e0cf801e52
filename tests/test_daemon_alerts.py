"""Daemon alerts end to end: a real HTTP receiver, a real SMTP server, SQLite on disk.

The webhook receiver is ``http.server`` on 127.0.0.1 in a thread (it can answer 500
to the first requests); the mail server is aiosmtpd's ``Controller``. Time is an
injected clock so thresholds, reminders and retry backoff are exact.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from agent.daemon.alerts import (
    Alerter,
    AlertSettings,
    EmailChannel,
    WebhookChannel,
)
from agent.daemon.changes_base import Change
from agent.daemon.triage import ModelTriage, PlainTriage
from agent.loop import Assistant, reject_all
from agent.runtime.base import Decision
from agent.settings import AgentSettings
from agent.testing import ScriptedRuntime, answer, call
from tools import runner
from tools.lab.ca import CertificateAuthority, ec_key, write_key, write_pem
from tools.models import Severity
from tools.verdict import TLS_KEX_FIXES

SCHEMA = """
CREATE TABLE outbox(id INTEGER PRIMARY KEY, channel TEXT NOT NULL,
    payload TEXT NOT NULL, created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL,
    delivered REAL, last_error TEXT);
CREATE TABLE alert_state(target TEXT NOT NULL, key TEXT NOT NULL,
    state TEXT NOT NULL, severity TEXT NOT NULL, since REAL NOT NULL,
    last_sent REAL, failures INTEGER NOT NULL DEFAULT 0,
    successes INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (target, key));
CREATE TABLE runs(id INTEGER PRIMARY KEY, result_json TEXT NOT NULL);
"""

PQ_LOST = Change(
    target="pq-tls",
    check="pq",
    kind="pq-regression",
    severity=Severity.HIGH,
    title="Post-quantum key exchange dropped",
    detail="X25519MLKEM768 is no longer offered",
    key="pq:group:X25519MLKEM768",
)
PQ_BACK = Change(
    target="pq-tls",
    check="pq",
    kind="pq-improved",
    severity=Severity.INFO,
    title="Post-quantum key exchange restored",
    detail="X25519MLKEM768 is offered again",
    key="pq:group:X25519MLKEM768",
    resolved=True,
)
PORT_OPEN = Change(
    target="web",
    check="scan",
    kind="port-opened",
    severity=Severity.LOW,
    title="Port 2222/tcp opened",
    detail="ssh answered on 2222",
    key="port:2222/tcp",
)


# --- real parts ------------------------------------------------------------------


class SqliteStore:
    """The store slice the alerter uses, over a database file on disk."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(SCHEMA)

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.db.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[Any]:
        return self.db.execute(sql, params).fetchall()

    def outbox(self) -> list[tuple[Any, ...]]:
        return self.query(
            "SELECT channel, attempts, next_attempt, delivered, last_error FROM outbox"
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Deliveries:
    """Counts ``alert_delivery`` calls like the daemon's metrics do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def alert_delivery(self, channel: str, ok: bool) -> None:
        self.calls.append((channel, ok))


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each POST."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = receiver.fail_first >= len(receiver.requests)
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    port = free_port()
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "daemon.db")


def alerter(
    store: SqliteStore, clock: Clock, metrics: Deliveries | None = None, **settings: Any
) -> Alerter:
    return Alerter(
        AlertSettings.model_validate(settings),
        store,
        metrics or Deliveries(),
        clock=clock,
    )


# --- conditions ------------------------------------------------------------------


async def test_condition_alerts_once_after_failure_threshold(
    store: SqliteStore, receiver: Receiver
) -> None:
    clock = Clock()
    hooks = [{"url": receiver.url}]
    alerts = alerter(store, clock, webhooks=hooks, failure_threshold=2)

    await alerts.handle([PQ_LOST])
    assert await alerts.deliver_due() == 0
    clock.now += 300
    await alerts.handle([], ran=["pq-tls"])
    assert await alerts.deliver_due() == 1
    for _ in range(3):
        clock.now += 300
        await alerts.handle([], ran=["pq-tls"])
        assert await alerts.deliver_due() == 0
    await alerts.close()

    (body,) = receiver.bodies()
    assert body["target"] == "pq-tls"
    assert body["kind"] == "pq-regression"
    assert body["severity"] == "high"
    assert body["resolved"] is False
    assert body["key"] == "pq:group:X25519MLKEM768"
    assert body["netwarden"]
    assert body["at"].startswith("2027-01-15T")
    assert "X25519MLKEM768" in body["triage"]
    assert "Fix:" in body["triage"]


async def test_reminder_after_interval_then_one_resolved(
    store: SqliteStore, receiver: Receiver
) -> None:
    clock = Clock()
    hooks = [{"url": receiver.url}]
    alerts = alerter(store, clock, webhooks=hooks, reminder_minutes=30)

    await alerts.handle([PQ_LOST])
    clock.now += 20 * 60
    await alerts.handle([], ran=["pq-tls"])
    assert await alerts.deliver_due() == 1
    clock.now += 11 * 60
    await alerts.handle([], ran=["pq-tls"])
    clock.now += 60
    await alerts.handle([PQ_BACK])
    await alerts.handle([], ran=["pq-tls"])
    assert await alerts.deliver_due() == 2
    await alerts.close()

    first, reminder, resolved = receiver.bodies()
    assert (first["reminder"], reminder["reminder"]) == (False, True)
    assert reminder["title"] == first["title"]
    assert resolved["resolved"] is True
    assert resolved["severity"] == "high"
    assert resolved["title"] == "Post-quantum key exchange restored"
    assert resolved["key"] == first["key"]
    assert store.query("SELECT * FROM alert_state") == []


async def test_resolved_needs_success_threshold_and_send_resolved(
    store: SqliteStore, receiver: Receiver
) -> None:
    clock = Clock()
    quiet = alerter(store, clock, webhooks=[{"url": receiver.url}], send_resolved=False)
    await quiet.handle([PQ_LOST])
    await quiet.handle([PQ_BACK])
    assert await quiet.deliver_due() == 1
    await quiet.close()

    patient = alerter(
        store, clock, webhooks=[{"url": receiver.url}], success_threshold=3
    )
    await patient.handle([PQ_LOST])
    await patient.handle([PQ_BACK])
    await patient.handle([], ran=["pq-tls"])
    assert await patient.deliver_due() == 1
    await patient.handle([], ran=["pq-tls"])
    assert await patient.deliver_due() == 1
    await patient.close()
    assert [b["resolved"] for b in receiver.bodies()] == [False, False, True]


async def test_flapping_back_before_threshold_sends_nothing_new(
    store: SqliteStore, receiver: Receiver
) -> None:
    clock = Clock()
    alerts = alerter(
        store, clock, webhooks=[{"url": receiver.url}], success_threshold=2
    )
    await alerts.handle([PQ_LOST])
    await alerts.handle([PQ_BACK])
    await alerts.handle([PQ_LOST])
    await alerts.handle([], ran=["pq-tls"])
    assert await alerts.deliver_due() == 1
    await alerts.close()
    assert store.query("SELECT state FROM alert_state") == [("firing",)]


async def test_severity_filter_per_channel(
    store: SqliteStore, receiver: Receiver, tmp_path: Path
) -> None:
    other = Receiver()
    hooks = [{"url": receiver.url, "min_severity": "low"}, {"url": other.url}]
    alerts = alerter(store, Clock(), webhooks=hooks)
    await alerts.handle([PORT_OPEN, PQ_LOST])
    assert await alerts.deliver_due() == 3
    await alerts.close()
    other.stop()

    assert sorted(b["title"] for b in receiver.bodies()) == [
        "Port 2222/tcp opened",
        "Post-quantum key exchange dropped",
    ]
    assert [b["title"] for b in other.bodies()] == ["Post-quantum key exchange dropped"]


async def test_quiet_runs_of_another_check_do_not_count(
    store: SqliteStore, receiver: Receiver
) -> None:
    alerts = alerter(
        store, Clock(), webhooks=[{"url": receiver.url}], failure_threshold=2
    )
    await alerts.handle([PQ_LOST], ran=["pq-tls"], check="pq")
    await alerts.handle([], ran=["pq-tls"], check="tls")
    assert await alerts.deliver_due() == 0
    await alerts.handle([], ran=["pq-tls"], check="pq")
    assert await alerts.deliver_due() == 1
    await alerts.close()


class SlowTriage:
    """A triage that takes a while, as a model does."""

    async def explain(self, change: Change, result_text: str) -> str:
        await asyncio.sleep(0.05)
        return f"slow: {change.title}"


async def test_concurrent_runs_do_not_duplicate_an_alert(
    store: SqliteStore, receiver: Receiver
) -> None:
    settings = AlertSettings(webhooks=[WebhookChannel(url=receiver.url)])
    alerts = Alerter(settings, store, Deliveries(), SlowTriage(), clock=Clock())
    await asyncio.gather(
        alerts.handle([PQ_LOST], ran=["pq-tls"]),
        alerts.handle([], ran=["pq-tls"]),
        alerts.handle([], ran=["pq-tls"]),
    )
    assert await alerts.deliver_due() == 1
    await alerts.close()
    assert receiver.bodies()[0]["triage"].startswith("slow: Post-quantum")


async def test_worse_severity_on_an_open_condition_alerts_again(
    store: SqliteStore, receiver: Receiver
) -> None:
    expiring = Change(
        "web", "tls", "cert-threshold", Severity.MEDIUM, "Expires in 14 days",
        "notAfter 2027-01-29", "cert:expiry",
    )  # fmt: skip
    alerts = alerter(store, Clock(), webhooks=[{"url": receiver.url}])
    await alerts.handle([expiring])
    await alerts.handle([replace(expiring, detail="still 14 days")])
    await alerts.handle([replace(expiring, severity=Severity.HIGH, title="7 days")])
    assert await alerts.deliver_due() == 2
    await alerts.close()
    assert [b["severity"] for b in receiver.bodies()] == ["medium", "high"]
    assert "Renew the certificate" in receiver.bodies()[1]["triage"]


# --- delivery --------------------------------------------------------------------


async def test_receiver_down_keeps_alert_until_it_returns(
    store: SqliteStore, receiver: Receiver
) -> None:
    clock, metrics = Clock(), Deliveries()
    port, url = receiver.port, receiver.url
    receiver.stop()
    settings = {"webhooks": [{"url": url}], "retry_seconds": 10}
    alerts = alerter(store, clock, metrics, **settings)
    await alerts.handle([PQ_LOST])

    assert await alerts.deliver_due() == 0
    clock.now += 5
    assert await alerts.deliver_due() == 0  # not due yet: no attempt
    clock.now += 5
    assert await alerts.deliver_due() == 0
    (row,) = store.outbox()
    assert row[1] == 2
    assert row[2] == clock.now + 20
    assert row[3] is None
    assert "ConnectError" in row[4]

    back = Receiver(port)
    clock.now += 20
    assert await alerts.deliver_due() == 1
    await alerts.close()
    back.stop()
    assert len(back.requests) == 1
    assert store.outbox()[0][1:2] == (3,)
    assert store.outbox()[0][3] == clock.now
    assert metrics.calls == [("webhook", False), ("webhook", False), ("webhook", True)]


async def test_http_500_is_retried_with_exponential_backoff(
    store: SqliteStore, receiver: Receiver
) -> None:
    clock = Clock()
    receiver.fail_first = 3
    hooks = [{"url": receiver.url}]
    alerts = alerter(
        store, clock, webhooks=hooks, retry_seconds=10, retry_max_seconds=25
    )
    await alerts.handle([PQ_LOST])
    waits = []
    for _ in range(3):
        assert await alerts.deliver_due() == 0
        next_attempt = store.outbox()[0][2]
        waits.append(next_attempt - clock.now)
        clock.now = next_attempt
    assert await alerts.deliver_due() == 1
    await alerts.close()
    assert waits == [10, 20, 25]
    assert store.outbox()[0][1] == 4
    assert len(receiver.requests) == 4


@pytest.mark.parametrize(
    "reply",
    [b"", b"\x00\xff garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"],
)
async def test_hostile_receiver_is_a_failed_attempt(
    store: SqliteStore, raw_server: Any, reply: bytes
) -> None:
    async def answer_badly(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(65536)
        writer.write(reply)
        writer.close()

    port = await raw_server(answer_badly)
    hooks = [{"url": f"http://127.0.0.1:{port}/hook", "timeout": 2}]
    metrics = Deliveries()
    alerts = alerter(store, Clock(), metrics, webhooks=hooks)
    await alerts.handle([PQ_LOST])
    assert await alerts.deliver_due() == 0
    await alerts.close()
    (row,) = store.outbox()
    assert row[1] == 1
    assert row[3] is None
    assert row[4].startswith(f"POST http://127.0.0.1:{port}/hook: ")
    assert metrics.calls == [("webhook", False)]


async def test_slack_body_and_custom_headers(
    store: SqliteStore, receiver: Receiver
) -> None:
    hook = {"url": receiver.url, "slack": True, "headers": {"X-Token": "t0k"}}
    alerts = alerter(store, Clock(), webhooks=[hook])
    await alerts.handle([PQ_LOST])
    assert await alerts.deliver_due() == 1
    await alerts.close()

    ((headers, raw),) = receiver.requests
    body = json.loads(raw)
    assert list(body) == ["text"]
    assert body["text"].startswith("*[HIGH] pq-tls: Post-quantum key exchange dropped*")
    assert "X25519MLKEM768 is no longer offered" in body["text"]
    assert headers["X-Token"] == "t0k"
    assert headers["Content-Type"] == "application/json"


async def test_email_arrives_with_subject_and_body(
    store: SqliteStore, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    mail = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "netwarden@lab.example",
        "recipients": ["ops@lab.example", "sec@lab.example"],
    }
    metrics = Deliveries()
    alerts = alerter(store, Clock(), metrics, emails=[mail])
    await alerts.handle([PQ_LOST])
    await alerts.handle([PQ_BACK])
    assert await alerts.deliver_due() == 2
    await alerts.close()

    opened, resolved = box.envelopes
    assert opened.rcpt_tos == ["ops@lab.example", "sec@lab.example"]
    message = message_from_bytes(opened.original_content or b"")
    assert message["Subject"] == (
        "netwarden [HIGH] pq-tls: Post-quantum key exchange dropped"
    )
    text = str(message.get_payload())
    assert "X25519MLKEM768 is no longer offered" in text
    assert "key: pq:group:X25519MLKEM768" in text
    closed = message_from_bytes(resolved.original_content or b"")
    assert closed["Subject"].startswith("netwarden [RESOLVED] pq-tls:")
    assert metrics.calls == [("email", True), ("email", True)]


async def test_email_missing_password_stays_in_outbox(
    store: SqliteStore, mailbox: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port = mailbox
    monkeypatch.delenv("NW_TEST_SMTP_PASSWORD", raising=False)
    mail = EmailChannel(
        host="127.0.0.1",
        port=port,
        sender="nw@lab.example",
        recipients=["ops@lab.example"],
        username="nw",
        password_env="NW_TEST_SMTP_PASSWORD",
    )
    alerts = Alerter(AlertSettings(emails=[mail]), store, Deliveries(), clock=Clock())
    await alerts.handle([PQ_LOST])
    assert await alerts.deliver_due() == 0
    await alerts.close()
    (row,) = store.outbox()
    assert row[1] == 1
    assert "NW_TEST_SMTP_PASSWORD" in row[4]
    assert box.envelopes == []


async def test_email_over_starttls_with_login(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = CertificateAuthority.root("Alerts Test CA", ec_key())
    key = ec_key()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(
        write_pem(tmp_path / "smtp.pem", [ca.issue(key)]),
        write_key(tmp_path / "smtp.key", key),
    )
    write_pem(tmp_path / "ca.pem", [ca.cert])
    logins: list[tuple[str, str]] = []

    def check_login(mechanism: str, login: bytes, password: bytes) -> bool:
        logins.append((login.decode(), password.decode()))
        return password == b"s3cret"

    box, port = Mailbox(), free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        auth_callback=check_login,
    )
    controller.start()
    monkeypatch.setenv("NW_TEST_SMTP_PASSWORD", "s3cret")
    mail = EmailChannel(
        host="127.0.0.1",
        port=port,
        sender="nw@lab.example",
        recipients=["ops@lab.example"],
        starttls=True,
        ca_file=tmp_path / "ca.pem",
        username="nw",
        password_env="NW_TEST_SMTP_PASSWORD",
    )
    alerts = Alerter(AlertSettings(emails=[mail]), store, Deliveries(), clock=Clock())
    await alerts.handle([PQ_LOST])
    delivered = await alerts.deliver_due()
    await alerts.close()
    controller.stop()
    assert delivered == 1
    assert logins == [("nw", "s3cret")]
    assert box.envelopes[0].rcpt_tos == ["ops@lab.example"]


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookChannel(url="127.0.0.1:9000/hook")
    with pytest.raises(ValueError, match="slak"):
        WebhookChannel.model_validate({"url": "http://127.0.0.1/", "slak": True})
    with pytest.raises(ValueError, match="failure_threshold"):
        AlertSettings(failure_threshold=0)


# --- triage ----------------------------------------------------------------------


async def test_plain_triage_names_the_fix() -> None:
    text = await PlainTriage().explain(PQ_LOST, "")
    assert text.startswith("What changed: Post-quantum key exchange dropped on pq-tls")
    assert f"Fix: {TLS_KEX_FIXES[0]}" in text
    expired = Change(
        "web", "tls", "finding-opened", Severity.CRITICAL, "Certificate has expired",
        "expired 3 days ago", "finding:cert-expired",
    )  # fmt: skip
    assert "Renew the certificate" in await PlainTriage().explain(expired, "")
    named = replace(PQ_LOST, title="Post-quantum regression on pq-tls")
    plain = await PlainTriage().explain(named, "")
    assert plain.startswith("What changed: Post-quantum regression on pq-tls (pq).")


async def test_model_triage_uses_the_model_answer(
    store: SqliteStore, receiver: Receiver
) -> None:
    reply = "The server lost its hybrid group; restore Groups = X25519MLKEM768."
    runtime = ScriptedRuntime([call("nmap_scan", target="127.0.0.1"), answer(reply)])
    assistant = Assistant(
        runtime, runner.Options(), AgentSettings(), ModelTriage.approver(False)
    )
    triage = ModelTriage(assistant)
    alerts = Alerter(
        AlertSettings(webhooks=[WebhookChannel(url=receiver.url)]),
        store,
        Deliveries(),
        triage,
        clock=Clock(),
    )
    store.execute("INSERT INTO runs VALUES (7, ?)", ('{"groups": ["X25519"]}',))
    await alerts.handle([replace(PQ_LOST, run_id=7)])
    assert await alerts.deliver_due() == 1
    await alerts.close()

    assert receiver.bodies()[0]["triage"] == reply
    prompt = runtime.seen[0].last("user")
    assert prompt is not None
    assert "X25519MLKEM768 is no longer offered" in prompt.content
    assert '{"groups": ["X25519"]}' in prompt.content
    refused = runtime.seen[1].last("tool")
    assert refused is not None
    assert "no active scan" in refused.content


async def test_model_triage_falls_back_to_plain_text() -> None:
    assistant = Assistant(
        ScriptedRuntime([]),
        runner.Options(),
        AgentSettings(),
        ModelTriage.approver(False),
    )
    text = await ModelTriage(assistant).explain(PQ_LOST, "")
    assert text == await PlainTriage().explain(PQ_LOST, "")


async def test_slow_model_triage_falls_back_to_plain_text() -> None:
    def slow(messages: Any, tools: Any) -> Decision:
        time.sleep(0.5)
        return answer("too late")

    assistant = Assistant(
        ScriptedRuntime([slow]), runner.Options(), AgentSettings(), reject_all("no")
    )
    text = await ModelTriage(assistant, timeout=0.1).explain(PQ_LOST, "")
    assert text == await PlainTriage().explain(PQ_LOST, "")

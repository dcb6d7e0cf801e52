"""Alert channels for the daemon: which changes become alerts, and their delivery.

The daemon config embeds :class:`AlertSettings` under ``[alerts]``::

    [alerts]
    failure_threshold = 2      # runs a condition must persist before it alerts
    success_threshold = 1      # good runs before it is announced resolved
    reminder_minutes = 60      # re-send an open condition; 0 = never
    send_resolved = true

    [[alerts.webhooks]]
    url = "http://127.0.0.1:9000/hook"
    slack = false
    min_severity = "medium"

    [[alerts.emails]]
    host = "127.0.0.1"
    sender = "netwarden@example.org"
    recipients = ["ops@example.org"]
    password_env = "NETWARDEN_SMTP_PASSWORD"
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import smtplib
import sqlite3
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from email.message import EmailMessage
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.daemon.changes_base import Change
from agent.daemon.triage import PlainTriage, Triage
from tools.models import Severity

log = logging.getLogger(__name__)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookChannel(_Section):
    """An HTTP endpoint that receives one JSON POST per alert."""

    url: str = Field(description="http(s) URL the alert is POSTed to.")
    slack: bool = Field(
        default=False, description='Send a Slack-compatible {"text": ...} body.'
    )
    min_severity: Severity = Field(
        default=Severity.MEDIUM, description="Least severe change this channel gets."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. Authorization."
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per POST.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("give an http:// or https:// URL")
        return url


class EmailChannel(_Section):
    """An SMTP relay that receives one plain-text mail per alert."""

    host: str = Field(description="SMTP server host name or address.")
    port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    sender: str = Field(description="From address.")
    recipients: list[str] = Field(min_length=1, description="To addresses.")
    starttls: bool = Field(default=False, description="Upgrade with STARTTLS.")
    ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the relay's certificate."
    )
    username: str | None = Field(default=None, description="SMTP login, if any.")
    password_env: str | None = Field(
        default=None, description="Environment variable holding the SMTP password."
    )
    min_severity: Severity = Field(
        default=Severity.MEDIUM, description="Least severe change this channel gets."
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds per mail.")


class AlertSettings(_Section):
    """Where alerts go and how eagerly they are sent."""

    webhooks: list[WebhookChannel] = Field(default_factory=list)
    emails: list[EmailChannel] = Field(default_factory=list)
    failure_threshold: int = Field(
        default=1, ge=1, description="Consecutive runs a condition needs to alert."
    )
    success_threshold: int = Field(
        default=1, ge=1, description="Consecutive good runs before it is resolved."
    )
    reminder_minutes: float = Field(
        default=0, ge=0, description="Re-send an open condition this often; 0 = never."
    )
    send_resolved: bool = Field(
        default=True, description="Announce when an alerted condition ends."
    )
    retry_seconds: float = Field(
        default=30.0, gt=0, description="Wait after the first failed delivery."
    )
    retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between delivery attempts."
    )


# --- what the alerter needs from the daemon -------------------------------------


class AlertStore(Protocol):
    """The slice of the daemon's SQLite store the alerter uses (tables ``outbox``
    and ``alert_state``; ``alert_change`` is created here if missing)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def query(self, sql: str, params: Sequence[Any] = ...) -> Iterable[Any]: ...


class DeliveryMetrics(Protocol):
    def alert_delivery(self, channel: str, ok: bool) -> None: ...


_CHANGE_TABLE = """CREATE TABLE IF NOT EXISTS alert_change (
    target TEXT NOT NULL, key TEXT NOT NULL, "check" TEXT NOT NULL,
    opened TEXT NOT NULL, resolved TEXT, triage TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (target, key))"""


_UPDATES = {
    "failures": "UPDATE alert_state SET failures = failures + 1"
    " WHERE target = ? AND key = ?",
    "successes": "UPDATE alert_state SET successes = successes + 1"
    " WHERE target = ? AND key = ?",
    "refire": "UPDATE alert_state SET state = 'firing', successes = 0"
    " WHERE target = ? AND key = ?",
    "resolving": "UPDATE alert_state SET state = 'resolving', successes = 1"
    " WHERE target = ? AND key = ?",
    "forget-state": "DELETE FROM alert_state WHERE target = ? AND key = ?",
    "forget-change": "DELETE FROM alert_change WHERE target = ? AND key = ?",
}


def _version() -> str:
    try:
        return version("netwarden")
    except PackageNotFoundError:
        return "unknown"


# --- the alerter ------------------------------------------------------------------


class Alerter:
    """Turns changes into alerts and delivers them through the outbox.

    A condition (``target`` + ``Change.key``) is *pending* until it has been seen
    on ``failure_threshold`` consecutive runs, then *firing* (one alert, reminders
    every ``reminder_minutes``), then *resolving* after a resolving change until
    ``success_threshold`` good runs close it (one resolved alert). Runs without a
    change for a target count as "still the same" when the target is passed in
    ``ran``. Alerts wait in ``outbox`` until a channel accepts them.
    """

    def __init__(
        self,
        settings: AlertSettings,
        store: AlertStore,
        metrics: DeliveryMetrics,
        triage: Triage | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.triage: Triage = triage or PlainTriage()
        self.clock = clock
        self.version = _version()
        channels: list[WebhookChannel | EmailChannel] = [
            *settings.webhooks,
            *settings.emails,
        ]
        self._channels = {channel_name(c): c for c in channels}
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._handling = asyncio.Lock()
        self._delivering = asyncio.Lock()
        store.execute(_CHANGE_TABLE, ())

    async def close(self) -> None:
        await self._client.aclose()

    # -- conditions

    async def handle(
        self,
        changes: list[Change],
        *,
        ran: Iterable[str] = (),
        check: str | None = None,
    ) -> None:
        """Apply one run's changes.

        ``ran`` names the targets whose run just finished and ``check`` the check
        that ran (None: any), so conditions without a change count that run.
        """
        async with self._handling:
            now = self.clock()
            seen = {(c.target, c.key) for c in changes}
            for change in changes:
                if change.resolved:
                    self._resolving(change)
                else:
                    await self._opening(change, now)
            targets = {*ran, *(c.target for c in changes)}
            self._count_quiet_runs(targets, check, seen)
            await self._promote(now)

    async def _opening(self, change: Change, now: float) -> None:
        row = self._state(change.target, change.key)
        if row is None:
            self._insert_pending(change, now)
        elif row[0] == "resolving":
            self._set(change, "refire")
        elif row[0] == "pending":
            self._set(change, "failures")
            self._save_change(change, "opened")
        elif Severity(change.severity).rank > Severity(row[1]).rank:
            await self._escalate(change, now)

    def _resolving(self, change: Change) -> None:
        row = self._state(change.target, change.key)
        if row is None:
            return
        if row[0] == "pending":
            self._forget(change.target, change.key)
        elif row[0] == "firing":
            self._set(change, "resolving")
            self._save_change(change, "resolved")
        elif row[0] == "resolving":
            self._set(change, "successes")

    def _count_quiet_runs(
        self, targets: set[str], check: str | None, seen: set[tuple[str, str]]
    ) -> None:
        rows = self.store.query(
            'SELECT s.target, s.key, s.state, c."check" FROM alert_state AS s'
            " LEFT JOIN alert_change AS c USING (target, key)",
            (),
        )
        for target, key, state, opened_by in list(rows):
            other_check = check is not None and opened_by not in (None, check)
            if target not in targets or (target, key) in seen or other_check:
                continue
            bump = "successes" if state == "resolving" else "failures"
            self.store.execute(_UPDATES[bump], (target, key))

    async def _promote(self, now: float) -> None:
        s = self.settings
        never = float("-inf")
        reminder_due = now - s.reminder_minutes * 60 if s.reminder_minutes else never
        rows = self.store.query(
            "SELECT target, key, state, failures, successes, last_sent"
            " FROM alert_state",
            (),
        )
        for target, key, state, failures, successes, last_sent in list(rows):
            if state == "pending" and failures >= s.failure_threshold:
                await self._fire(target, key, now, reminder=False)
            elif state == "resolving" and successes >= s.success_threshold:
                self._close(target, key, now)
            elif state == "firing" and (last_sent or 0.0) <= reminder_due:
                await self._fire(target, key, now, reminder=True)

    # -- transitions

    async def _fire(self, target: str, key: str, now: float, *, reminder: bool) -> None:
        opened, _, triage = self._change(target, key)
        channels = self._channels_for(opened.severity)
        if channels and not triage:
            triage = await self.triage.explain(opened, self._result_text(opened))
            self.store.execute(
                "UPDATE alert_change SET triage = ? WHERE target = ? AND key = ?",
                (triage, target, key),
            )
        self.store.execute(
            "UPDATE alert_state SET state = 'firing', last_sent = ?"
            " WHERE target = ? AND key = ?",
            (now, target, key),
        )
        payload = self.payload(opened, triage, now, reminder=reminder)
        self._enqueue(channels, payload, now)
        log.info("alert %s %s %s", "reminder" if reminder else "opened", target, key)

    async def _escalate(self, change: Change, now: float) -> None:
        self.store.execute(
            "UPDATE alert_state SET severity = ? WHERE target = ? AND key = ?",
            (str(change.severity), change.target, change.key),
        )
        self._save_change(change, "opened")
        await self._fire(change.target, change.key, now, reminder=False)

    def _close(self, target: str, key: str, now: float) -> None:
        opened, resolved, _ = self._change(target, key)
        self._forget(target, key)
        log.info("alert resolved %s %s", target, key)
        if self.settings.send_resolved:
            change = replace(resolved or opened, severity=opened.severity)
            text = f"Resolved: {opened.title}."
            payload = self.payload(change, text, now, resolved=True)
            self._enqueue(self._channels_for(opened.severity), payload, now)

    def _enqueue(
        self, channels: list[str], payload: dict[str, Any], now: float
    ) -> None:
        body = json.dumps(payload)
        for name in channels:
            self.store.execute(
                "INSERT INTO outbox (channel, payload, created, next_attempt)"
                " VALUES (?, ?, ?, ?)",
                (name, body, now, now),
            )

    def payload(
        self,
        change: Change,
        triage: str,
        now: float,
        *,
        resolved: bool | None = None,
        reminder: bool = False,
    ) -> dict[str, Any]:
        """The JSON document a webhook receives for ``change``."""
        at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds")
        return {
            "netwarden": self.version,
            "target": change.target,
            "check": change.check,
            "kind": change.kind,
            "severity": str(change.severity),
            "title": change.title,
            "detail": change.detail,
            "key": change.key,
            "resolved": change.resolved if resolved is None else resolved,
            "reminder": reminder,
            "triage": triage,
            "at": at,
        }

    def _channels_for(self, severity: Severity | str) -> list[str]:
        rank = Severity(severity).rank
        return [
            name
            for name, channel in self._channels.items()
            if rank >= Severity(channel.min_severity).rank
        ]

    # -- rows

    def _result_text(self, change: Change) -> str:
        """The JSON result of the run that raised ``change``, when the store has it."""
        if "result" in change.extra or change.run_id is None:
            return change.extra.get("result", "")
        try:
            rows = list(
                self.store.query(
                    "SELECT result_json FROM runs WHERE id = ?", (change.run_id,)
                )
            )
        except sqlite3.Error:
            return ""
        return str(rows[0][0]) if rows else ""

    def _state(self, target: str, key: str) -> Any:
        rows = list(
            self.store.query(
                "SELECT state, severity FROM alert_state WHERE target = ? AND key = ?",
                (target, key),
            )
        )
        return rows[0] if rows else None

    def _insert_pending(self, change: Change, now: float) -> None:
        self.store.execute(
            "INSERT INTO alert_state (target, key, state, severity, since, failures)"
            " VALUES (?, ?, 'pending', ?, ?, 1)",
            (change.target, change.key, str(change.severity), now),
        )
        self._save_change(change, "opened")

    def _set(self, change: Change, update: str) -> None:
        self.store.execute(_UPDATES[update], (change.target, change.key))

    def _save_change(self, change: Change, column: str) -> None:
        body = json.dumps(asdict(change))
        if column == "opened":
            self.store.execute(
                'INSERT INTO alert_change (target, key, "check", opened)'
                " VALUES (?, ?, ?, ?) ON CONFLICT (target, key) DO UPDATE SET"
                ' "check" = excluded."check", opened = excluded.opened, triage = \'\'',
                (change.target, change.key, change.check, body),
            )
        else:
            self.store.execute(
                "UPDATE alert_change SET resolved = ? WHERE target = ? AND key = ?",
                (body, change.target, change.key),
            )

    def _change(self, target: str, key: str) -> tuple[Change, Change | None, str]:
        rows = list(
            self.store.query(
                "SELECT opened, resolved, triage FROM alert_change"
                " WHERE target = ? AND key = ?",
                (target, key),
            )
        )
        try:
            opened, resolved, triage = rows[0]
            later = Change(**json.loads(resolved)) if resolved else None
            return Change(**json.loads(opened)), later, str(triage)
        except (IndexError, ValueError, TypeError):
            log.warning("alert details of %s %s are missing or unreadable", target, key)
            return _bare_change(target, key), None, ""

    def _forget(self, target: str, key: str) -> None:
        for update in ("forget-state", "forget-change"):
            self.store.execute(_UPDATES[update], (target, key))

    # -- delivery

    async def deliver_due(self, limit: int = 100) -> int:
        """Send the outbox rows that are due; returns how many were delivered."""
        async with self._delivering:
            return await self._deliver(limit)

    async def _deliver(self, limit: int) -> int:
        now = self.clock()
        rows = self.store.query(
            "SELECT id, channel, payload, attempts FROM outbox"
            " WHERE delivered IS NULL AND next_attempt <= ? ORDER BY id LIMIT ?",
            (now, limit),
        )
        delivered, failing = 0, set()
        for row_id, name, body, attempts in list(rows):
            if name in failing:
                continue
            error = await self._send(name, body)
            self._record(row_id, attempts, error, now)
            if error:
                failing.add(name)
            else:
                delivered += 1
        return delivered

    def _record(self, row_id: int, attempts: int, error: str, now: float) -> None:
        if not error:
            self.store.execute(
                "UPDATE outbox SET delivered = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (now, row_id),
            )
            return
        s = self.settings
        wait = min(s.retry_seconds * 2**attempts, s.retry_max_seconds)
        self.store.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?,"
            " last_error = ? WHERE id = ?",
            (now + wait, error[:500], row_id),
        )
        log.warning(
            "alert delivery %d failed (retry in %.0fs): %s", row_id, wait, error
        )

    async def _send(self, name: str, body: str) -> str:
        """Deliver one outbox row; returns an error message, or "" on success."""
        channel = self._channels.get(name)
        if channel is None:
            return f"channel {name} is no longer configured"
        try:
            payload = json.loads(body)
            if isinstance(channel, WebhookChannel):
                error = await self._post(channel, payload)
            else:
                error = await asyncio.to_thread(send_mail, channel, payload)
        except (ValueError, KeyError, TypeError) as exc:
            error = f"unreadable outbox payload: {exc}"
        self.metrics.alert_delivery(channel_kind(channel), not error)
        return error

    async def _post(self, channel: WebhookChannel, payload: dict[str, Any]) -> str:
        body = {"text": slack_text(payload)} if channel.slack else payload
        try:
            response = await self._client.post(
                channel.url, json=body, headers=channel.headers, timeout=channel.timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return f"POST {channel.url}: {type(exc).__name__}: {exc}"
        if not response.is_success:
            return f"POST {channel.url}: HTTP {response.status_code}"
        return ""


def _bare_change(target: str, key: str) -> Change:
    """Stands in for a condition whose stored details are lost."""
    return Change(
        target, "", "finding-opened", Severity.HIGH, f"Condition {key}", "", key
    )


# --- channels ---------------------------------------------------------------------


def channel_name(channel: WebhookChannel | EmailChannel) -> str:
    """The outbox ``channel`` value: stable while the config keeps the channel."""
    if isinstance(channel, WebhookChannel):
        return f"webhook:{channel.url}"
    return f"email:{channel.host}:{channel.port}:{','.join(channel.recipients)}"


def channel_kind(channel: WebhookChannel | EmailChannel) -> str:
    """The metrics label: ``webhook``, ``slack`` or ``email`` (never a URL)."""
    if isinstance(channel, EmailChannel):
        return "email"
    return "slack" if channel.slack else "webhook"


def headline(payload: dict[str, Any]) -> str:
    """One line naming the alert, e.g. ``[HIGH] pq-tls: PQ key exchange dropped``."""
    label = "RESOLVED" if payload["resolved"] else str(payload["severity"]).upper()
    again = " (reminder)" if payload.get("reminder") else ""
    return f"[{label}] {payload['target']}: {payload['title']}{again}"


def slack_text(payload: dict[str, Any]) -> str:
    """A Slack-compatible message text (mrkdwn) for one alert."""
    lines = [f"*{headline(payload)}*", str(payload["detail"])]
    if payload.get("triage"):
        lines.append(f"> {payload['triage']}")
    lines.append(f"_{payload['check']} · {payload['key']} · {payload['at']}_")
    return "\n".join(lines)


def mail_body(payload: dict[str, Any]) -> str:
    """The plain-text body of an alert mail."""
    rows = ("target", "check", "kind", "severity", "key", "at")
    lines = [headline(payload), "", str(payload["detail"]), ""]
    if payload.get("triage"):
        lines += [str(payload["triage"]), ""]
    lines += [f"{name}: {payload[name]}" for name in rows]
    return "\n".join([*lines, "", f"-- netwarden {payload['netwarden']}"])


def send_mail(channel: EmailChannel, payload: dict[str, Any]) -> str:
    """Send one alert mail (blocking); returns an error message or ""."""
    message = EmailMessage()
    message["Subject"] = f"netwarden {headline(payload)}"
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message.set_content(mail_body(payload))
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout) as smtp:
            if channel.starttls:
                smtp.starttls(
                    context=ssl.create_default_context(cafile=channel.ca_file)
                )
            if channel.username:
                smtp.login(channel.username, _password(channel))
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError, LookupError) as exc:
        return f"SMTP {channel.host}:{channel.port}: {type(exc).__name__}: {exc}"
    return ""


def _password(channel: EmailChannel) -> str:
    if not channel.password_env:
        return ""
    password = os.environ.get(channel.password_env)
    if password is None:
        raise LookupError(f"environment variable {channel.password_env} is not set")
    return password

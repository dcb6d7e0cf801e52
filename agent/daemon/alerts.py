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

from pydantic import BaseModel, ConfigDict, Field

from tools.models import Severity


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


class EmailChannel(_Section):
    """An SMTP relay that receives one plain-text mail per alert."""

    host: str = Field(description="SMTP server host name or address.")
    port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    sender: str = Field(description="From address.")
    recipients: list[str] = Field(min_length=1, description="To addresses.")
    starttls: bool = Field(default=False, description="Upgrade with STARTTLS.")
    username: str | None = Field(default=None, description="SMTP login, if any.")
    password_env: str | None = Field(
        default=None, description="Environment variable holding the SMTP password."
    )
    min_severity: Severity = Field(
        default=Severity.MEDIUM, description="Least severe change this channel gets."
    )


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

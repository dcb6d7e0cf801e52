"""Argument models of the model's tools; their JSON schemas are what the model sees.

Patterns are tight on purpose: a target is a host name, an IPv4 address or a
bracketed IPv6 address with an optional port (and ``ssh://`` for SSH), a port list is
digits, commas and dashes. They stay within the regex subset llama.cpp turns into a
grammar (plain groups, classes, ``?*+`` and small ``{m,n}``), so a local model can
only produce matching strings. Scope is still decided in ``tools.runner``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_HOST = r"([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
HOST_PATTERN = rf"^{_HOST}(:[0-9]{{1,5}})?$"
PQ_TARGET_PATTERN = rf"^(ssh://)?{_HOST}(:[0-9]{{1,5}})?$"
SCAN_TARGET_PATTERN = rf"^{_HOST}(/[0-9]{{1,3}})?$"
PORTS_PATTERN = r"^[0-9][0-9,-]*$"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsCheckArgs(_Args):
    target: str = Field(
        pattern=HOST_PATTERN,
        max_length=260,
        description="host, host:port or IP[:port]; port 443 if omitted",
    )


class PqCheckArgs(_Args):
    target: str = Field(
        pattern=PQ_TARGET_PATTERN,
        max_length=266,
        description="host[:port] for TLS; ssh://host[:port] or port 22 for SSH",
    )


class NmapScanArgs(_Args):
    target: str = Field(
        pattern=SCAN_TARGET_PATTERN,
        max_length=260,
        description="host, IP address or network such as 127.0.0.0/28",
    )
    profile: Literal["quick", "services", "vuln"] = Field(
        default="quick", description="quick, services or vuln"
    )
    ports: str | None = Field(
        default=None,
        pattern=PORTS_PATTERN,
        max_length=200,
        description="ports to scan, e.g. 22,443,8000-8010; the profile's if omitted",
    )


class FullCheckArgs(_Args):
    target: str = Field(
        pattern=HOST_PATTERN, max_length=260, description="host or IP address"
    )
    ports: str | None = Field(
        default=None,
        pattern=PORTS_PATTERN,
        max_length=200,
        description="ports to scan, e.g. 22,443,8000-8010; nmap's top 1000 if omitted",
    )

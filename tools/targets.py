"""Parsing of target strings: ``host``, ``host:port``, ``[v6]:port``, URLs."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tools.errors import TargetError

_SCHEME_PORTS = {"https": 443, "tls": 443, "ssh": 22, "imaps": 993, "smtps": 465}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$"
)


@dataclass(frozen=True)
class Target:
    """A parsed target: where to connect and what was asked for."""

    raw: str
    host: str
    port: int
    scheme: str | None = None

    @property
    def is_ip(self) -> bool:
        return is_ip_literal(self.host)

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def validate_host(host: str, raw: str) -> str:
    """Return ``host`` normalised, or raise TargetError if it is no host name."""
    if is_ip_literal(host):
        return str(ipaddress.ip_address(host))
    if not _HOSTNAME.match(host):
        raise TargetError(f"{raw!r} is not a valid host name or IP address")
    return host.rstrip(".").lower()


def parse_port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TargetError(f"{raw!r}: port must be a number from 1 to 65535")
    return int(text)


def parse_target(raw: str, default_port: int = 443) -> Target:
    """Parse one target string; raise :class:`TargetError` with the reason."""
    text = raw.strip()
    if not text or any(c.isspace() for c in text):
        raise TargetError(f"{raw!r} is not a target (empty or contains spaces)")
    scheme = None
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        text = parts.netloc.rsplit("@", 1)[-1]
        default_port = _SCHEME_PORTS.get(scheme, default_port)
    host, port_text = _split_host_port(text, raw)
    port = parse_port(port_text, raw) if port_text is not None else default_port
    return Target(raw=raw, host=validate_host(host, raw), port=port, scheme=scheme)


def _split_host_port(text: str, raw: str) -> tuple[str, str | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetError(f"{raw!r}: unclosed '[' in IPv6 address")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise TargetError(f"{raw!r}: expected ':PORT' after ']'")
        return text[1:end], (rest[1:] if rest else None)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None  # a bare name, IPv4, or an unbracketed IPv6 address


def parse_ports(text: str) -> list[int]:
    """Parse a port list such as ``22,443,8000-8010``; sorted, no duplicates."""
    ports: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        if "-" in item:
            low_text, _, high_text = item.partition("-")
            low, high = parse_port(low_text, text), parse_port(high_text, text)
            if low > high or high - low > 65535:
                raise TargetError(f"{text!r}: range {item} is backwards")
            ports.update(range(low, high + 1))
        else:
            ports.add(parse_port(item, text))
    if not ports:
        raise TargetError("empty port list")
    return sorted(ports)


def format_ports(ports: list[int]) -> str:
    """The compact nmap form of a sorted port list: ``22,443,8000-8010``."""
    spans: list[tuple[int, int]] = []
    for port in ports:
        if spans and port == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], port)
        else:
            spans.append((port, port))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


_MENTION = re.compile(
    r"(?<![\w.-])("
    r"\[[0-9a-fA-F:]+\](?::\d{1,5})?"  # [v6]:port
    r"|(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?::\d{1,5})?"  # v4, v4/cidr, v4:port
    r"|(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}(?::\d{1,5})?"  # name.tld[:port]
    r"|localhost(?::\d{1,5})?"
    r")(?![\w-])"
)


def find_targets(text: str) -> list[str]:
    """Host-like strings mentioned in free text, in order, without duplicates.

    Used to warn up front that a question names something outside the scope; the
    scope itself is still enforced by every check.
    """
    found: list[str] = []
    for match in _MENTION.finditer(text):
        candidate = match.group(1)
        host = candidate.split("/")[0]
        try:
            parse_target(host)
        except TargetError:
            continue
        if candidate not in found:
            found.append(candidate)
    return found

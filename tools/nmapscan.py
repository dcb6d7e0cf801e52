"""Port scans with Nmap, driven through python-nmap, in named profiles only.

The command line is built from a :data:`PROFILES` entry, a validated port list and
an already scope-checked address, never from free text, so no caller can smuggle in
an option. Names are never resolved (``-n``): the runner resolves and scope-checks
before it calls :func:`run_scan`.

TCP connect scans (``-sT``) are used even as root: on loopback they give the same
answers as SYN scans, need no raw sockets and behave the same for every user.
Everything nmap reports about a service (product, version, script output) came from
the network, so it is treated as hostile text: control characters are stripped and
each value is capped in size.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import nmap

from tools.errors import ProbeError, ToolMissingError, UsageError
from tools.models import HostInfo, PortInfo, ScanResult, Status
from tools.targets import format_ports

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "nmap is not installed: install it with 'apt-get install nmap' (Debian/Ubuntu) "
    "or see https://nmap.org/download"
)
SCRIPT_OUTPUT_LIMIT = 4096
FIELD_LIMIT = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Profile:
    """A named, fixed set of nmap options."""

    name: str
    description: str
    options: tuple[str, ...]
    top_ports: int
    """How many of nmap's most common ports to scan when no port list is given."""


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", "open TCP ports among the top 100", (), 100),
    "services": Profile(
        "services", "open ports with service and version detection", ("-sV",), 1000
    ),
    "vuln": Profile(
        "vuln",
        "service detection plus nmap's 'vuln' scripts (slow, intrusive)",
        ("-sV", "--script", "vuln"),
        1000,
    ),
}


def _nmap_path() -> str:
    path = shutil.which("nmap")
    if path is None:
        raise ToolMissingError(INSTALL_HINT)
    return path


def _scanner() -> nmap.PortScanner:
    try:
        return nmap.PortScanner(nmap_search_path=(_nmap_path(),))
    except nmap.PortScannerError as exc:
        raise ToolMissingError(f"{INSTALL_HINT} ({_one_line(str(exc))})") from exc


def nmap_version() -> str:
    """The installed nmap's version, e.g. ``"7.93"``; ToolMissingError if none."""
    major, minor = _scanner().nmap_version()
    return f"{major}.{minor}"


def get_profile(name: str) -> Profile:
    """The profile called ``name``, or UsageError naming the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        valid = ", ".join(PROFILES)
        raise UsageError(f"unknown scan profile {name!r}; use one of {valid}") from None


def _check_ports(ports: list[int]) -> list[int]:
    valid = all(type(p) is int and 0 < p < 65536 for p in ports)
    if not ports or not valid:
        raise UsageError(f"ports must be numbers from 1 to 65535, got {ports!r}")
    return sorted(set(ports))


def _check_address(address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise UsageError(f"{address!r} is not an IP address or network") from None


def build_arguments(
    profile: Profile, ports: list[int] | None, host_timeout_s: int, *, ipv6: bool
) -> list[str]:
    """The nmap options (everything but the address) for one scan."""
    if type(host_timeout_s) is not int or not 0 < host_timeout_s <= 86400:
        raise UsageError(f"host timeout must be 1 to 86400 s, got {host_timeout_s!r}")
    arguments = ["-n", "-Pn", "-sT", "-T4", "--host-timeout", f"{host_timeout_s}s"]
    if ipv6:
        arguments.append("-6")
    if ports is None:
        arguments += ["--top-ports", str(profile.top_ports)]
    else:
        arguments += ["-p", format_ports(_check_ports(ports))]
    return arguments + list(profile.options)


def run_scan(
    target: str,
    *,
    address: str,
    profile: str = "quick",
    ports: list[int] | None = None,
    host_timeout_s: int = 120,
) -> ScanResult:
    """Scan ``address`` (scope-checked IP or CIDR) with a named profile.

    Raises UsageError for a bad profile, port list or address, ToolMissingError if
    nmap is missing, and ProbeError(Status.ERROR or TIMEOUT) if nmap fails.
    """
    chosen = get_profile(profile)
    network = _check_address(address)
    arguments = build_arguments(
        chosen, ports, host_timeout_s, ipv6=network.version == 6
    )
    hosts = str(network.network_address if network.num_addresses == 1 else network)
    scanner = _scanner()
    began = time.monotonic()
    raw = _run(scanner, hosts, arguments, host_timeout_s + 60)
    result = ScanResult(
        target=target,
        address=address,
        profile=chosen.name,
        command=clean_text(scanner.command_line(), SCRIPT_OUTPUT_LIMIT),
    )
    _parse(result, raw, _read_xml(scanner))
    result.duration_ms = (time.monotonic() - began) * 1000
    log.info(
        "nmap %s scan of %s: %d hosts, %d open ports in %.1f s",
        chosen.name,
        address,
        len(result.hosts),
        sum(p.state == "open" for p in result.ports),
        result.duration_ms / 1000,
    )
    return result


def _run(
    scanner: nmap.PortScanner, hosts: str, arguments: list[str], timeout_s: int
) -> dict[str, Any]:
    """Run nmap; turn every way it can fail into a one-line ProbeError."""
    try:
        raw: dict[str, Any] = scanner.scan(
            hosts=hosts, arguments=" ".join(arguments), timeout=timeout_s
        )
    except nmap.PortScannerTimeout:
        raise ProbeError(
            Status.TIMEOUT, f"nmap ran longer than {timeout_s} s"
        ) from None
    except nmap.PortScannerError as exc:
        raise ProbeError(Status.ERROR, f"nmap failed: {_one_line(str(exc))}") from None
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        # python-nmap trips over well-formed but incomplete XML (a killed nmap)
        message = f"nmap wrote incomplete XML ({type(exc).__name__})"
        raise ProbeError(Status.ERROR, message) from None
    errors = raw.get("nmap", {}).get("scaninfo", {}).get("error")
    if errors and not raw.get("scan"):
        text = "\n".join(errors) if isinstance(errors, list) else str(errors)
        raise ProbeError(Status.ERROR, f"nmap failed: {_one_line(text)}")
    return raw


def _read_xml(scanner: nmap.PortScanner) -> ET.Element:
    output = scanner.get_nmap_last_output()
    try:
        return ET.fromstring(output)  # noqa: S314 - nmap escapes peer text
    except ET.ParseError as exc:
        raise ProbeError(Status.ERROR, f"nmap wrote unreadable XML: {exc}") from None


def _parse(result: ScanResult, raw: dict[str, Any], xml: ET.Element) -> None:
    """Fill ``result`` with hosts and ports from python-nmap plus tunnels from XML."""
    tunnels = _tunnels(xml)
    result.nmap_version = clean_text(xml.get("version", ""), FIELD_LIMIT)
    for address, host in raw.get("scan", {}).items():
        result.hosts.append(_host(address, host))
        for protocol in ("tcp", "udp", "sctp"):
            for port, entry in sorted(host.get(protocol, {}).items()):
                tunnel = tunnels.get((address, protocol, int(port)), "")
                result.ports.append(_port(address, protocol, port, entry, tunnel))


def _host(address: str, host: dict[str, Any]) -> HostInfo:
    names = [n.get("name", "") for n in host.get("hostnames", []) if n.get("name")]
    state = host.get("status", {}).get("state", "unknown")
    return HostInfo(
        address=address,
        hostname=clean_text(names[0] if names else "", FIELD_LIMIT),
        state=clean_text(state, FIELD_LIMIT),
    )


def _port(
    address: str, protocol: str, port: int, entry: dict[str, Any], tunnel: str
) -> PortInfo:
    scripts = entry.get("script", {}) or {}
    return PortInfo(
        host=address,
        port=int(port),
        protocol=protocol,
        state=clean_text(entry.get("state", ""), FIELD_LIMIT),
        service=clean_text(entry.get("name", ""), FIELD_LIMIT),
        product=clean_text(entry.get("product", ""), FIELD_LIMIT),
        version=clean_text(entry.get("version", ""), FIELD_LIMIT),
        extra=clean_text(entry.get("extrainfo", ""), FIELD_LIMIT),
        tunnel=clean_text(tunnel, FIELD_LIMIT),
        scripts={
            clean_text(name, FIELD_LIMIT): clean_text(output, SCRIPT_OUTPUT_LIMIT)
            for name, output in scripts.items()
        },
    )


def _tunnels(xml: ET.Element) -> dict[tuple[str, str, int], str]:
    """(address, protocol, port) -> tunnel ("ssl"), which python-nmap drops."""
    found: dict[tuple[str, str, int], str] = {}
    for host in xml.iter("host"):
        addresses = [
            a.get("addr", "")
            for a in host.iter("address")
            if a.get("addrtype") in ("ipv4", "ipv6")
        ]
        for port in host.iter("port"):
            service = port.find("service")
            tunnel = service.get("tunnel", "") if service is not None else ""
            if tunnel and addresses and port.get("portid", "").isdigit():
                key = (
                    addresses[0],
                    port.get("protocol", ""),
                    int(port.get("portid", "")),
                )
                found[key] = tunnel
    return found


def clean_text(text: object, limit: int = SCRIPT_OUTPUT_LIMIT) -> str:
    """Hostile text as safe data: no control characters but newline and tab, capped."""
    cleaned = _CONTROL.sub("", str(text))
    if len(cleaned) > limit:
        return cleaned[: limit - 15] + " ...[truncated]"
    return cleaned


def _one_line(text: str) -> str:
    lines = [
        line.strip() for line in clean_text(text, 1000).splitlines() if line.strip()
    ]
    return lines[0] if lines else "no error message"

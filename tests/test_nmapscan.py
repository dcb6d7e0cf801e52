"""Nmap scans of the practice lab, the argument builder, and hostile nmap output."""

from __future__ import annotations

import re
import socket
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.errors import ProbeError, ToolMissingError, UsageError
from tools.lab import Lab
from tools.models import PortInfo, ScanResult, Status
from tools.nmapscan import (
    INSTALL_HINT,
    PROFILES,
    SCRIPT_OUTPUT_LIMIT,
    build_arguments,
    clean_text,
    nmap_version,
    run_scan,
)
from tools.targets import parse_ports

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _by_port(result: ScanResult) -> dict[int, PortInfo]:
    return {p.port: p for p in result.ports}


@pytest.fixture(scope="module")
def lab_ports(lab: Lab) -> tuple[int, int, int]:
    """A TLS lab port, the OpenSSH port and a closed port."""
    tls = lab.endpoints["classical-tls"].port
    return tls, lab.endpoints["ssh-openssh"].port, _closed_port()


@pytest.fixture(scope="module")
def services_scan(lab_ports: tuple[int, int, int]) -> ScanResult:
    return run_scan(
        "localhost", address="127.0.0.1", profile="services", ports=[*lab_ports]
    )


def test_quick_scan_finds_open_and_closed_ports(
    lab_ports: tuple[int, int, int],
) -> None:
    tls, ssh, closed = lab_ports
    result = run_scan("lab", address="127.0.0.1", ports=[closed, ssh, tls])
    ports = _by_port(result)
    assert result.status == Status.OK
    assert ports[tls].state == ports[ssh].state == "open"
    assert closed not in ports or ports[closed].state != "open"
    assert [h.address for h in result.hosts] == ["127.0.0.1"]
    assert "-sV" not in result.command.split()


@pytest.mark.slow
def test_services_scan_names_ssh_and_sees_the_tls_tunnel(
    services_scan: ScanResult, lab_ports: tuple[int, int, int]
) -> None:
    tls, ssh, closed = lab_ports
    ports = _by_port(services_scan)
    assert ports[ssh].service == "ssh"
    assert ports[ssh].product == "OpenSSH"
    assert ports[tls].tunnel == "ssl"
    assert ports[ssh].tunnel == ""
    assert closed not in ports or ports[closed].state != "open"


@pytest.mark.slow
def test_services_scan_records_what_ran(services_scan: ScanResult) -> None:
    assert services_scan.target == "localhost"
    assert services_scan.address == "127.0.0.1"
    assert services_scan.profile == "services"
    assert services_scan.nmap_version == nmap_version()
    assert {"-n", "-Pn", "-sT", "-sV"} <= set(services_scan.command.split())
    assert services_scan.command.split()[-1] == "127.0.0.1"


@pytest.mark.slow
def test_vuln_profile_keeps_script_output_as_clean_data(lab: Lab) -> None:
    port = lab.endpoints["legacy-tls"].port
    result = run_scan("lab", address="127.0.0.1", profile="vuln", ports=[port])
    scripts = _by_port(result)[port].scripts
    assert scripts, "the vuln profile ran no scripts"
    for output in scripts.values():
        assert not CONTROL.search(output)
        assert len(output) <= SCRIPT_OUTPUT_LIMIT


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="quick, services, vuln"):
        run_scan("x", address="127.0.0.1", profile="aggressive")


@pytest.mark.parametrize(
    "ports", [[], [0], [65536], [-1], [True], ["22"], [22.0]], ids=repr
)
def test_bad_ports_are_usage_errors(ports: list[int]) -> None:
    with pytest.raises(UsageError, match="ports"):
        run_scan("x", address="127.0.0.1", ports=ports)


@pytest.mark.parametrize(
    "address", ["-iL /etc/passwd", "localhost", "127.0.0.1 --script=x", ""]
)
def test_address_must_be_an_ip_or_network(address: str) -> None:
    with pytest.raises(UsageError, match="not an IP address"):
        run_scan("x", address=address)


def test_host_timeout_is_checked() -> None:
    with pytest.raises(UsageError, match="host timeout"):
        run_scan("x", address="127.0.0.1", host_timeout_s=0)


FIXED_TOKENS = {"-n", "-Pn", "-sT", "-T4", "--host-timeout", "-p", "-6", "-sV"}
FIXED_TOKENS |= {"--script", "vuln", "--top-ports", "100", "1000"}


@given(
    profile=st.sampled_from(sorted(PROFILES)),
    ports=st.none() | st.lists(st.integers(1, 65535), min_size=1, max_size=40),
    timeout=st.integers(1, 86400),
    ipv6=st.booleans(),
)
def test_arguments_hold_only_expected_tokens(
    profile: str, ports: list[int] | None, timeout: int, ipv6: bool
) -> None:
    arguments = build_arguments(PROFILES[profile], ports, timeout, ipv6=ipv6)
    unexpected = set(arguments) - FIXED_TOKENS - {f"{timeout}s"}
    if ports is None:
        assert unexpected == set()
        return
    spec = arguments[arguments.index("-p") + 1]
    assert unexpected == {spec}
    assert re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", spec)
    assert parse_ports(spec) == sorted(set(ports))


def test_missing_nmap_gives_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as caught:
        nmap_version()
    assert str(caught.value) == INSTALL_HINT
    with pytest.raises(ToolMissingError, match="apt-get install nmap"):
        run_scan("x", address="127.0.0.1", ports=[22])


def _fake_nmap(
    directory: Path, monkeypatch: pytest.MonkeyPatch, out: str, err: str, rc: int
) -> None:
    """An ``nmap`` on PATH that prints ``out``/``err`` and exits ``rc``."""
    (directory / "out.xml").write_text(out)
    (directory / "err.txt").write_text(err)
    script = directory / "nmap"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-V" ]; then echo "Nmap version 7.93 ( https://nmap.org )"; '
        "exit 0; fi\n"
        f'/bin/cat "{directory}/out.xml"\n'
        f'/bin/cat "{directory}/err.txt" >&2\n'
        f"exit {rc}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(directory))


def test_nmap_garbage_is_a_probe_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nmap(tmp_path, monkeypatch, "<<not xml", "nmap: \x1b[31mexploded\n", 1)
    with pytest.raises(ProbeError) as caught:
        run_scan("x", address="127.0.0.1", ports=[22])
    assert caught.value.status == Status.ERROR
    message = str(caught.value)
    assert "\n" not in message
    assert "\x1b" not in message


RUNSTATS = (
    '<runstats><finished time="1" timestr="t" elapsed="0.1" exit="success"/>'
    '<hosts up="0" down="0" total="0"/></runstats>'
)


def test_nmap_error_without_hosts_is_a_probe_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = f'<?xml version="1.0"?><nmaprun version="7.93">{RUNSTATS}</nmaprun>'
    _fake_nmap(tmp_path, monkeypatch, empty, "Failed to resolve something\n", 1)
    with pytest.raises(ProbeError, match=r"nmap failed: Failed to resolve something$"):
        run_scan("x", address="127.0.0.1", ports=[22])


def test_truncated_nmap_xml_is_a_probe_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = '<?xml version="1.0"?><nmaprun version="7.93"><host></host></nmaprun>'
    _fake_nmap(tmp_path, monkeypatch, cut, "", 0)
    with pytest.raises(ProbeError, match="incomplete XML"):
        run_scan("x", address="127.0.0.1", ports=[22])


HOSTILE_XML = """<?xml version="1.0"?>
<nmaprun scanner="nmap" args="nmap" version="7.93">
<host><status state="up" reason="user-set"/>
<address addr="127.0.0.1" addrtype="ipv4"/><hostnames/>
<ports><port protocol="tcp" portid="443"><state state="open" reason="syn-ack"/>
<service name="http" product="evil&#x9b;2Jhttpd" version="1.0&#x7f;" tunnel="ssl"
 method="probed" conf="10"/>
<script id="banner" output="line one&#xa;&#x9;tab&#x9d;0;pwned&#xd;{filler}"/>
</port></ports></host>{runstats}</nmaprun>
"""


def test_hostile_service_text_is_cleaned_and_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xml = HOSTILE_XML.format(filler="A" * 10000, runstats=RUNSTATS)
    _fake_nmap(tmp_path, monkeypatch, xml, "", 0)
    result = run_scan("x", address="127.0.0.1", profile="services", ports=[443])
    port = result.ports[0]
    assert (port.port, port.tunnel, port.service) == (443, "ssl", "http")
    assert port.product == "evil2Jhttpd"
    assert port.version == "1.0"
    banner = port.scripts["banner"]
    assert banner.startswith("line one\n\ttab0;pwnedAAA")
    assert len(banner) == SCRIPT_OUTPUT_LIMIT
    assert banner.endswith("[truncated]")


def test_clean_text_keeps_newlines_and_tabs_only() -> None:
    assert clean_text("a\x00b\r\nc\td\x9b", 100) == "ab\nc\td"

"""Post-quantum group and version probes against the lab's real servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from tools.errors import ProbeError
from tools.lab import Lab, LabEndpoint
from tools.models import Status, TlsPqReport
from tools.tls.probe import NotTlsError, probe_groups, probe_versions
from tools.tls.wire import HRR_RANDOM

PQ_NAMES = {
    "X25519MLKEM768",
    "SecP256r1MLKEM768",
    "SecP384r1MLKEM1024",
    "curveSM2MLKEM768",
    "MLKEM512",
    "MLKEM768",
    "MLKEM1024",
}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _probe(lab: Lab, name: str) -> TlsPqReport:
    endpoint = lab.endpoints[name]
    return await probe_groups(endpoint.host, endpoint.port, endpoint.server_name)


def _outcomes(report: TlsPqReport) -> dict[str, str]:
    return {g.name: g.outcome for g in report.groups}


async def test_pq_tls_supports_mlkem_hybrids(lab: Lab) -> None:
    started = time.monotonic()
    report = await _probe(lab, "pq-tls")
    elapsed = time.monotonic() - started

    assert report.max_version == "TLS 1.3"
    assert report.control is not None
    assert report.control.outcome == "supported"
    assert "X25519MLKEM768" in report.pq_groups
    assert "SecP256r1MLKEM768" in report.pq_groups
    assert set(report.pq_groups) <= PQ_NAMES
    assert {"x25519", "secp256r1"} <= set(report.supported_groups)
    x25519mlkem = next(g for g in report.groups if g.name == "X25519MLKEM768")
    assert x25519mlkem.detail == "HelloRetryRequest selected X25519MLKEM768"
    assert _outcomes(report)["X25519Kyber768Draft00"] == "not-supported"
    assert elapsed < 3.0, f"probing took {elapsed:.2f} s"


async def test_pq_tls_preference_and_clients(lab: Lab) -> None:
    report = await _probe(lab, "pq-tls")

    assert sorted(report.preference) == sorted(report.supported_groups)
    assert report.server_order is not None
    views = {view.client: view for view in report.clients}
    browser = views["browser"]
    assert browser.selected_group == "X25519MLKEM768"
    assert not browser.hello_retry
    assert browser.version == "TLS 1.3"
    assert browser.cipher is not None
    assert browser.cipher.startswith("TLS_")
    assert views["classical-client"].selected_group == "x25519"
    assert report.ciphers_256 is True


async def test_classical_tls_has_no_pq(lab: Lab) -> None:
    report = await _probe(lab, "classical-tls")

    assert report.max_version == "TLS 1.3"
    assert report.pq_groups == []
    assert "x25519" in report.supported_groups
    mlkem = next(g for g in report.groups if g.name == "X25519MLKEM768")
    assert mlkem.outcome == "not-supported"
    assert mlkem.detail.startswith("alert ")
    views = {view.client: view for view in report.clients}
    assert views["browser"].selected_group == "x25519"
    assert views["pq-first-x25519-share"].selected_group == "x25519"


async def test_tls12_only_server(lab: Lab) -> None:
    report = await _probe(lab, "tls12-only")

    assert report.max_version == "TLS 1.2"
    assert report.pq_groups == []
    pq_probes = [g for g in report.groups if g.name in PQ_NAMES]
    assert all(g.outcome == "not-supported" for g in pq_probes)
    assert all("does not speak TLS 1.3" in g.detail for g in pq_probes)
    assert "secp256r1" in report.supported_groups  # the ECDHE groups, over TLS 1.2
    assert report.control is not None
    assert "protocol_version(70)" in report.control.detail


async def test_groups_follow_the_server_config() -> None:
    """Narrow a private pq-tls to classical groups: the probe sees the regression."""
    with Lab(["pq-tls"]) as private:
        endpoint = private.endpoints["pq-tls"]
        private.set_groups("pq-tls", "X25519:secp384r1")
        report = await probe_groups(endpoint.host, endpoint.port, "localhost")
        private.set_groups("pq-tls", "X25519MLKEM768:X25519")
        restored = await probe_groups(endpoint.host, endpoint.port, "localhost")

    assert report.pq_groups == []
    assert report.supported_groups == ["x25519", "secp384r1"]
    assert sorted(report.preference) == ["secp384r1", "x25519"]
    assert restored.pq_groups == ["X25519MLKEM768"]
    assert restored.supported_groups == ["X25519MLKEM768", "x25519"]


async def test_versions(lab: Lab) -> None:
    def where(name: str) -> tuple[str, int, str]:
        endpoint: LabEndpoint = lab.endpoints[name]
        return endpoint.host, endpoint.port, endpoint.server_name

    legacy = await probe_versions(*where("legacy-tls"))
    classical = await probe_versions(*where("classical-tls"))
    tls12 = await probe_versions(*where("tls12-only"))

    assert legacy["TLS 1.0"] is True
    assert legacy["TLS 1.1"] is True
    assert classical == {
        "TLS 1.0": False,
        "TLS 1.1": False,
        "TLS 1.2": True,
        "TLS 1.3": True,
    }
    assert tls12["TLS 1.3"] is False
    assert tls12["TLS 1.2"] is True


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_closed_port_is_refused() -> None:
    port = _closed_port()
    with pytest.raises(ProbeError) as caught:
        await probe_groups("127.0.0.1", port, None, timeout=2.0)
    assert caught.value.status is Status.REFUSED
    with pytest.raises(ProbeError) as again:
        await probe_versions("127.0.0.1", port, None, timeout=2.0)
    assert again.value.status is Status.REFUSED


async def test_ssh_port_raises_not_tls(lab: Lab) -> None:
    endpoint = lab.endpoints["ssh-openssh"]
    with pytest.raises(NotTlsError) as caught:
        await probe_groups(endpoint.host, endpoint.port, None)
    assert caught.value.banner is not None
    assert caught.value.banner.startswith("SSH-2.0-OpenSSH")


async def test_silent_server_times_out(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read()

    port = await raw_server(silent)
    with pytest.raises(ProbeError) as caught:
        await probe_groups("127.0.0.1", port, None, timeout=0.3)
    assert caught.value.status is Status.TIMEOUT


async def test_http_server_is_not_tls(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    async def http(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    port = await raw_server(http)
    with pytest.raises(NotTlsError, match="HTTP") as caught:
        await probe_groups("127.0.0.1", port, None)
    assert caught.value.banner is None


async def test_garbage_after_control_becomes_error_outcomes(
    raw_server: Callable[[Handler], Awaitable[int]],
) -> None:
    """A server that answers the control properly, then garbage: errors, no crash."""
    hrr = _hello_retry_x25519()
    seen = 0

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        await reader.read(5)
        writer.write(hrr if seen == 1 else b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x03")
        await writer.drain()
        writer.close()

    port = await raw_server(flaky)
    report = await probe_groups("127.0.0.1", port, None, concurrency=1)
    assert report.control is not None
    assert report.control.outcome == "supported"
    others = [g for g in report.groups if g.name != "x25519"]
    assert all(g.outcome == "error" for g in others)
    assert "truncated ServerHello" in others[0].detail


def _hello_retry_x25519() -> bytes:
    """A HelloRetryRequest selecting x25519, as a server would send it."""
    extensions = bytes.fromhex("002b 0002 0304 0033 0002 001d")
    body = (
        b"\x03\x03" + HRR_RANDOM + b"\x00" + b"\x13\x02\x00"
        + len(extensions).to_bytes(2, "big") + extensions
    )  # fmt: skip
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message

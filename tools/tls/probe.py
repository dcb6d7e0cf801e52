"""Post-quantum TLS probes: which groups a server accepts, in what order, for whom.

Each probe is one TCP connection carrying one hand-built ClientHello; the first
server reply decides it and the connection is dropped, so no key exchange is ever
completed and no KEM code is needed. A TLS 1.3 hello offering a single group with
an empty key_share makes a server that supports the group answer with a
HelloRetryRequest naming it. Probes run concurrently, bounded by ``concurrency``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

from tools.errors import ProbeError
from tools.models import ClientView, GroupProbe, ProbeOutcome, Status, TlsPqReport
from tools.ssh import connect_error
from tools.tls.groups import GROUPS, TLS12_EC_GROUPS, Group, by_code, group_name
from tools.tls.wire import (
    AEAD_256_TLS12,
    AEAD_256_TLS13,
    ECDHE_CIPHERS,
    TLS10,
    TLS11,
    TLS12,
    TLS13,
    Alert,
    Closed,
    NotTls,
    ServerHello,
    ServerReply,
    SshBanner,
    build_client_hello,
    read_server_reply,
    version_name,
)

logger = logging.getLogger(__name__)

X25519, SECP256R1, SECP384R1, X25519MLKEM768 = 0x001D, 0x0017, 0x0018, 0x11EC
NIST_CURVES = (SECP256R1, SECP384R1, 0x0019)
NOT_SUPPORTED_ALERTS = frozenset({40, 47, 71})
LEGACY_VERSIONS = (TLS12, TLS11, TLS10)
NO_TLS13 = "server does not speak TLS 1.3"


@dataclass(frozen=True)
class ClientProfile:
    """A client we imitate: the groups it offers and the shares it sends."""

    name: str
    groups: tuple[int, ...]
    key_shares: tuple[int, ...]


CLIENT_PROFILES = (
    ClientProfile("browser", (X25519MLKEM768, X25519, SECP256R1, SECP384R1),
                  (X25519MLKEM768, X25519)),
    ClientProfile("classical-client", (X25519, SECP256R1), (X25519,)),
    ClientProfile("pq-first-x25519-share", (X25519MLKEM768, X25519), (X25519,)),
)  # fmt: skip


class NotTlsError(ProbeError):
    """The port answered, but not with TLS; ``banner`` is set when it speaks SSH."""

    def __init__(self, reply: SshBanner | NotTls) -> None:
        if isinstance(reply, SshBanner):
            message = f"the port speaks SSH, not TLS: {reply.text!r}"
        else:
            message = reply.reason
        super().__init__(Status.ERROR, message)
        self.reply = reply
        self.banner = reply.text if isinstance(reply, SshBanner) else None


class _Session:
    """Where to connect and how; bounds the number of open probes."""

    def __init__(
        self,
        address: str,
        port: int,
        server_name: str | None,
        timeout: float,
        limit: int,
    ) -> None:
        self.address = address
        self.port = port
        self.server_name = server_name
        self.timeout = timeout
        self.count = 0
        self._slots = asyncio.Semaphore(max(1, limit))

    def hello(
        self,
        groups: Sequence[int],
        *,
        versions: Sequence[int],
        key_shares: Sequence[int] = (),
        ciphers: Sequence[int] | None = None,
    ) -> bytes:
        return build_client_hello(
            server_name=self.server_name,
            groups=groups,
            key_shares=key_shares,
            versions=versions,
            ciphers=ciphers,
        )

    async def exchange(
        self, hello: bytes, *, key_exchange: bool = False
    ) -> ServerReply:
        """Send ``hello`` on a fresh connection and return the first reply."""
        async with self._slots:
            self.count += 1
            reader, writer = await self._connect()
            try:
                with suppress(ConnectionError):
                    writer.write(hello)
                    await writer.drain()
                return await read_server_reply(
                    reader, self.timeout, key_exchange=key_exchange
                )
            finally:
                writer.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        where = f"{self.address}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.open_connection(self.address, self.port)
        except TimeoutError:
            raise ProbeError(
                Status.TIMEOUT,
                f"connecting to {where} timed out after {self.timeout:g} s",
            ) from None
        except OSError as exc:
            raise connect_error(self.address, self.port, exc) from None


# --- reading one reply ---------------------------------------------------------


def group_outcome(code: int, reply: ServerReply) -> tuple[ProbeOutcome, str]:
    """What a reply to a single-group TLS 1.3 hello says about group ``code``."""
    if isinstance(reply, ServerHello):
        return _hello_outcome(code, reply)
    if isinstance(reply, Alert):
        if reply.description in NOT_SUPPORTED_ALERTS:
            return "not-supported", f"alert {reply.label}"
        if reply.description == 70:
            return "not-supported", f"alert {reply.label}: {NO_TLS13}"
        return "error", f"alert {reply.label}"
    if isinstance(reply, Closed):
        how = "reset" if reply.reset else "closed"
        return "not-supported", f"connection {how} without a reply"
    if isinstance(reply, SshBanner):
        return "error", f"the port speaks SSH: {reply.text!r}"
    return "error", reply.reason


def _hello_outcome(code: int, hello: ServerHello) -> tuple[ProbeOutcome, str]:
    kind = "HelloRetryRequest" if hello.is_hello_retry else "ServerHello"
    if hello.version != TLS13:
        return "not-supported", f"server answered {hello.version_name}: {NO_TLS13}"
    if hello.selected_group == code:
        return "supported", f"{kind} selected {group_name(code)}"
    chosen = (
        "no group" if hello.selected_group is None else group_name(hello.selected_group)
    )
    return "error", f"{kind} selected {chosen}, which was not offered"


def says_no_tls13(reply: ServerReply | None) -> bool:
    """True when a reply to a TLS 1.3-only hello shows the server lacks TLS 1.3."""
    if isinstance(reply, Alert):
        return reply.description == 70
    return isinstance(reply, ServerHello) and reply.version < TLS13


def _group_probe(group: Group, outcome: ProbeOutcome, detail: str) -> GroupProbe:
    return GroupProbe(
        name=group.name,
        code=group.code,
        kind=group.kind,
        outcome=outcome,
        detail=detail,
    )


def _raise_if_not_tls(reply: ServerReply) -> None:
    if isinstance(reply, SshBanner | NotTls):
        raise NotTlsError(reply)


# --- the steps -------------------------------------------------------------------


async def _probe_group(
    session: _Session, group: Group
) -> tuple[GroupProbe, ServerReply | None]:
    """One TLS 1.3 hello offering only ``group``, with an empty key_share."""
    hello = session.hello([group.code], key_shares=(), versions=(TLS13,))
    try:
        reply = await session.exchange(hello)
    except ProbeError as exc:
        return _group_probe(group, "error", str(exc)), None
    return _group_probe(group, *group_outcome(group.code, reply)), reply


async def _control(session: _Session) -> tuple[GroupProbe, ServerReply]:
    """x25519, then secp256r1: connect errors and non-TLS ports raise here."""
    for code in (X25519, SECP256R1):
        group = _registered(code)
        hello = session.hello([code], key_shares=(), versions=(TLS13,))
        reply = await session.exchange(hello)
        _raise_if_not_tls(reply)
        probe = _group_probe(group, *group_outcome(code, reply))
        if probe.outcome == "supported" or says_no_tls13(reply):
            break
    return probe, reply


def _registered(code: int) -> Group:
    group = by_code(code)
    assert group is not None, f"group 0x{code:04X} missing from the registry"
    return group


async def _probe_all_groups(session: _Session, known: GroupProbe) -> list[GroupProbe]:
    """Every registered group, concurrently; ``known`` is reused, not re-probed."""
    todo = [g for g in GROUPS if g.code != known.code]
    done = await asyncio.gather(*(_probe_group(session, g) for g in todo))
    by_code_ = {probe.code: probe for probe, _ in done}
    by_code_[known.code] = known
    return [by_code_[g.code] for g in GROUPS]


async def _winner(session: _Session, offer: Sequence[int]) -> int | None:
    """The group a server picks from ``offer`` when no key share is sent."""
    try:
        reply = await session.exchange(session.hello(offer, versions=(TLS13,)))
    except ProbeError:
        return None
    return reply.selected_group if isinstance(reply, ServerHello) else None


async def _preference(session: _Session, supported: Sequence[int]) -> list[int]:
    """Offer everything, take the winner away, repeat."""
    remaining, order = list(supported), list[int]()
    while len(remaining) > 1:
        winner = await _winner(session, remaining)
        if winner not in remaining:
            return order
        order.append(winner)
        remaining.remove(winner)
    return order + remaining


async def _server_order(session: _Session, supported: Sequence[int]) -> bool | None:
    """True when offering the groups reversed does not change the server's pick."""
    if len(supported) < 2:
        return None
    forward, backward = await asyncio.gather(
        _winner(session, supported), _winner(session, supported[::-1])
    )
    if forward is None or backward is None:
        return None
    return forward == backward


async def _client_view(session: _Session, profile: ClientProfile) -> ClientView:
    """What ``profile`` ends up with: group, HRR or not, version, cipher."""
    view = ClientView(
        client=profile.name,
        offered=[group_name(c) for c in profile.groups],
        key_shares=[group_name(c) for c in profile.key_shares],
    )
    hello = session.hello(
        profile.groups, key_shares=profile.key_shares, versions=(TLS13, TLS12)
    )
    try:
        reply = await session.exchange(hello, key_exchange=True)
    except ProbeError as exc:
        logger.debug("client view %s failed: %s", profile.name, exc)
        return view
    if isinstance(reply, ServerHello):
        group = reply.selected_group
        view.selected_group = group_name(group) if group is not None else None
        view.hello_retry = reply.is_hello_retry
        view.version = reply.version_name
        view.cipher = reply.cipher_name
    return view


async def _accepts_256(session: _Session, groups: Sequence[int], tls13: bool) -> bool:
    """Whether the server takes a hello that offers only 256-bit AEAD ciphers."""
    if tls13:
        hello = session.hello(groups, versions=(TLS13,), ciphers=AEAD_256_TLS13)
    else:
        hello = session.hello(groups, versions=(TLS12,), ciphers=AEAD_256_TLS12)
    try:
        reply = await session.exchange(hello)
    except ProbeError:
        return False
    return isinstance(reply, ServerHello)


# --- legacy servers ------------------------------------------------------------


async def _accepts_version(session: _Session, version: int) -> bool:
    """Raw hello for one version; True if the ServerHello carries that version."""
    if version == TLS13:
        codes = [g.code for g in GROUPS]
        hello = session.hello(codes, key_shares=(X25519,), versions=(TLS13,))
    else:
        codes = [*TLS12_EC_GROUPS, 0x0100, 0x0101]
        hello = session.hello(codes, versions=(version,))
    reply = await session.exchange(hello)
    _raise_if_not_tls(reply)
    return isinstance(reply, ServerHello) and reply.version == version


async def _versions(session: _Session, versions: Sequence[int]) -> dict[int, bool]:
    """Each version accepted or not; raises only if every probe failed."""
    results = await asyncio.gather(
        *(_accepts_version(session, v) for v in versions), return_exceptions=True
    )
    for result in results:
        if isinstance(result, NotTlsError):
            raise result
        if isinstance(result, BaseException) and not isinstance(result, ProbeError):
            raise result
    if all(isinstance(r, ProbeError) for r in results):
        raise results[0]  # type: ignore[misc]
    return {v: r is True for v, r in zip(versions, results, strict=True)}


async def _legacy_group(session: _Session, group: Group, version: int) -> GroupProbe:
    """Pre-1.3 ECDHE hellos for ``group``; the ServerKeyExchange names the curve.

    An ECDSA certificate's curve must be among the offered groups before TLS 1.3,
    so when ``group`` alone fails it is offered again ahead of the NIST curves.
    """
    label = version_name(version)
    try:
        reply = await _legacy_exchange(session, [group.code], version)
        if isinstance(reply, Alert) and group.code not in NIST_CURVES:
            reply = await _legacy_exchange(session, [group.code, *NIST_CURVES], version)
    except ProbeError as exc:
        return _group_probe(group, "error", f"{label}: {exc}")
    if isinstance(reply, ServerHello) and reply.version == version:
        if reply.selected_group == group.code:
            return _group_probe(group, "supported", f"{label} ECDHE with {group.name}")
        chosen = (
            "no ECDHE"
            if reply.selected_group is None
            else group_name(reply.selected_group)
        )
        detail = f"{label}: offered with the NIST curves, the server chose {chosen}"
        return _group_probe(group, "not-supported", detail)
    _, detail = group_outcome(group.code, reply)
    return _group_probe(group, "not-supported", f"{label}: {detail}; {NO_TLS13}")


async def _legacy_exchange(
    session: _Session, groups: Sequence[int], version: int
) -> ServerReply:
    hello = session.hello(groups, versions=(version,), ciphers=ECDHE_CIPHERS)
    return await session.exchange(hello, key_exchange=True)


async def _legacy_report(session: _Session, control: GroupProbe) -> TlsPqReport:
    """For servers without TLS 1.3: highest version, ECDHE groups over it."""
    accepted = await _versions(session, LEGACY_VERSIONS)
    best = next((v for v in LEGACY_VERSIONS if accepted[v]), None)
    if best is None:
        groups = [_group_probe(g, "not-supported", NO_TLS13) for g in GROUPS]
        return TlsPqReport(control=control, groups=groups)
    ec_groups = [g for g in GROUPS if g.code in TLS12_EC_GROUPS]
    probed, clients, ciphers_256 = await asyncio.gather(
        asyncio.gather(*(_legacy_group(session, g, best) for g in ec_groups)),
        asyncio.gather(*(_client_view(session, p) for p in CLIENT_PROFILES)),
        _accepts_256(session, TLS12_EC_GROUPS, False),
    )
    found = {p.code: p for p in probed}
    groups = [
        found.get(g.code) or _group_probe(g, "not-supported", NO_TLS13) for g in GROUPS
    ]
    return TlsPqReport(
        max_version=version_name(best),
        control=control,
        groups=groups,
        supported_groups=[g.name for g in groups if g.outcome == "supported"],
        clients=clients,
        ciphers_256=ciphers_256,
    )


# --- the public probes -----------------------------------------------------------


async def probe_groups(
    address: str,
    port: int,
    server_name: str | None,
    *,
    timeout: float = 5.0,
    concurrency: int = 8,
) -> TlsPqReport:
    """Which groups the server accepts, its preference, and what clients get."""
    started = time.monotonic()
    session = _Session(address, port, server_name, timeout, concurrency)
    control, reply = await _control(session)
    report = None
    if not says_no_tls13(reply):
        groups = await _probe_all_groups(session, control)
        if any(g.outcome == "supported" for g in groups):
            report = await _tls13_report(session, control, groups)
    if report is None:
        report = await _legacy_report(session, control)
    logger.info(
        "probed TLS groups on %s:%d: %d connections, %.0f ms, pq=%s",
        address, port, session.count, (time.monotonic() - started) * 1000,
        ",".join(report.pq_groups) or "none",
    )  # fmt: skip
    return report


async def _tls13_report(
    session: _Session, control: GroupProbe, groups: list[GroupProbe]
) -> TlsPqReport:
    supported = [g.code for g in groups if g.outcome == "supported"]
    views = asyncio.gather(*(_client_view(session, p) for p in CLIENT_PROFILES))
    preference, server_order, ciphers_256, clients = await asyncio.gather(
        _preference(session, supported),
        _server_order(session, supported),
        _accepts_256(session, supported, True),
        views,
    )
    return TlsPqReport(
        max_version=version_name(TLS13),
        control=control,
        groups=groups,
        supported_groups=[group_name(c) for c in supported],
        pq_groups=[g.name for g in groups if g.outcome == "supported" and _is_pq(g)],
        preference=[group_name(c) for c in preference],
        server_order=server_order,
        clients=clients,
        ciphers_256=ciphers_256,
    )


def _is_pq(probe: GroupProbe) -> bool:
    return probe.kind in ("pq-hybrid", "pq")


async def probe_versions(
    address: str, port: int, server_name: str | None, *, timeout: float = 5.0
) -> dict[str, bool]:
    """``{"TLS 1.0": bool, ..., "TLS 1.3": bool}`` from one raw hello per version."""
    session = _Session(address, port, server_name, timeout, 4)
    versions = (TLS10, TLS11, TLS12, TLS13)
    accepted = await _versions(session, versions)
    result = {version_name(v): accepted[v] for v in versions}
    logger.info("probed TLS versions on %s:%d: %s", address, port, result)
    return result

"""``inspect_tls``: connect, read the presented chain, judge it.

The handshake runs with pyOpenSSL on the OpenSSL bundled in ``cryptography``, so
it can negotiate X25519MLKEM768 and read ML-DSA certificates. Verification is off
during the handshake, so that a bad certificate is still read, and is then done
here against the system trust store, or against ``ca_file`` alone when given.

The caller has already checked the scope and resolved the name: ``address`` must
be an IP literal and is never resolved again.
"""

from __future__ import annotations

import errno
import itertools
import logging
import select
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL, crypto

from tools.certs.assess import DEFAULT_THRESHOLDS, Thresholds, certificate_findings
from tools.certs.describe import describe_certificate
from tools.certs.hostname import hostname_matches, to_a_label
from tools.errors import ConfigError, ProbeError
from tools.findings import finding
from tools.models import CertificateInfo, ConnectionInfo, Finding, Status, TrustInfo
from tools.targets import is_ip_literal

log = logging.getLogger(__name__)

_UNREACHABLE_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}
)
SYSTEM_CA_FILE = Path("/etc/ssl/certs/ca-certificates.crt")
_BINDING = Binding()


@dataclass
class CertInspection:
    """What one TLS endpoint presented, and what netwarden thinks of it."""

    certificate: CertificateInfo
    chain: list[CertificateInfo]
    trust: TrustInfo
    connection: ConnectionInfo
    findings: list[Finding]
    leaf: x509.Certificate


@dataclass
class _Handshake:
    chain: list[x509.Certificate]
    connection: ConnectionInfo


def inspect_tls(
    address: str,
    port: int,
    server_name: str | None,
    *,
    ca_file: Path | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    timeout: float = 5.0,
    now: datetime | None = None,
) -> CertInspection:
    """Connect to ``address:port`` and inspect its certificate chain (blocking).

    ``server_name`` is sent as SNI (unless it is an IP literal) and is the name
    the certificate must match; without it the certificate must match
    ``address``. Raises :class:`ProbeError` when no handshake completes.
    """
    moment = now or datetime.now(UTC)
    store = trust_store(ca_file, moment)
    handshake = handshake_with(address, port, server_name, timeout)
    leaf, presented = handshake.chain[0], handshake.chain
    infos = [describe_certificate(cert, moment) for cert in presented]
    host = server_name or address
    trust = trust_info(store, presented, host, str(ca_file) if ca_file else "system")
    findings = certificate_findings(
        infos[0], trust, thresholds, chain=infos, host=host, now=moment
    )
    if not handshake.connection.ocsp_stapled:
        findings.append(
            finding("tls-no-ocsp-stapling", "no OCSP response in the handshake")
        )
    log.info("tls %s:%d sni=%s: %d findings", address, port, server_name, len(findings))
    return CertInspection(infos[0], infos, trust, handshake.connection, findings, leaf)


def trust_info(
    store: crypto.X509Store, chain: list[x509.Certificate], host: str, label: str
) -> TrustInfo:
    """Whether ``chain`` verifies in ``store``, covers ``host`` and is in order."""
    reason = verify_chain(store, chain)
    return TrustInfo(
        trusted=reason is None,
        store=label,
        reason=reason,
        hostname_match=hostname_matches(chain[0], host),
        chain_in_order=chain_in_order(chain),
    )


def trust_store(ca_file: Path | None, now: datetime) -> crypto.X509Store:
    """An OpenSSL store holding ``ca_file`` or the system CAs, verifying at ``now``."""
    store = crypto.X509Store()
    path = ca_file or SYSTEM_CA_FILE
    try:
        store.load_locations(str(path))
    except (crypto.Error, OSError) as exc:
        if ca_file is not None:
            raise ConfigError(f"cannot load CA file {ca_file}: {exc}") from exc
        log.warning("system CA bundle %s not loadable: %s", path, exc)
    store.set_time(now.astimezone(UTC).replace(tzinfo=None))
    return store


def verify_chain(store: crypto.X509Store, chain: list[x509.Certificate]) -> str | None:
    """None when ``chain`` verifies against ``store``, else OpenSSL's reason."""
    leaf, *rest = [crypto.X509.from_cryptography(cert) for cert in chain]
    try:
        crypto.X509StoreContext(store, leaf, rest).verify_certificate()
    except crypto.X509StoreContextError as exc:
        return str(exc.errors[2]) if len(exc.errors) > 2 else str(exc)
    except crypto.Error as exc:  # a chain OpenSSL cannot even evaluate
        return f"verification error: {exc}"
    return None


def chain_in_order(chain: list[x509.Certificate]) -> bool:
    """Each certificate's issuer is the subject of the one after it."""
    try:
        return all(a.issuer == b.subject for a, b in itertools.pairwise(chain))
    except ValueError:
        return False


def handshake_with(
    address: str, port: int, server_name: str | None, timeout: float
) -> _Handshake:
    """Run one TLS handshake and collect what the server presented."""
    deadline = time.monotonic() + timeout
    sock = open_socket(address, port, timeout)
    ocsp: list[bytes] = []
    try:
        conn = SSL.Connection(_client_context(ocsp), sock)
        sni = _sni(server_name)
        if sni is not None:
            conn.set_tlsext_host_name(sni)
        conn.request_ocsp()
        conn.set_connect_state()
        _drive(conn, sock, deadline, timeout)
        result = _Handshake(_peer_chain(conn), _connection_info(conn, bool(ocsp)))
        _close_notify(conn)
        return result
    finally:
        sock.close()


def open_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to an IP literal; failures become :class:`ProbeError`."""
    if not is_ip_literal(address):
        raise ProbeError(Status.ERROR, f"{address!r} is not an IP address")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except OSError as exc:
        sock.close()
        raise _connect_error(exc, address, port, timeout) from exc
    sock.setblocking(False)
    return sock


def _connect_error(exc: OSError, address: str, port: int, timeout: float) -> ProbeError:
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return ProbeError(Status.REFUSED, f"{where}: connection refused")
    if isinstance(exc, TimeoutError):
        return ProbeError(Status.TIMEOUT, f"{where}: no answer within {timeout:g}s")
    if exc.errno in _UNREACHABLE_ERRNOS:
        return ProbeError(Status.UNREACHABLE, f"{where}: {exc.strerror}")
    return ProbeError(Status.ERROR, f"{where}: {exc.strerror or exc}")


def _client_context(ocsp: list[bytes]) -> SSL.Context:
    """A client context that accepts anything, so that everything can be read."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    context.set_min_proto_version(SSL.TLS1_VERSION)
    context.set_cipher_list(b"ALL:@SECLEVEL=0")
    context.set_ocsp_client_callback(_record_ocsp, ocsp)
    return context


def _record_ocsp(
    conn: SSL.Connection, response: bytes, sink: list[bytes] | None
) -> bool:
    if response and sink is not None:
        sink.append(response)
    return True


def _sni(server_name: str | None) -> bytes | None:
    if not server_name or is_ip_literal(server_name.strip("[]")):
        return None
    name = to_a_label(server_name)
    return name.encode("ascii") if name else None


def _drive(
    conn: SSL.Connection, sock: socket.socket, deadline: float, timeout: float
) -> None:
    """Finish the handshake on a non-blocking socket before ``deadline``."""
    while True:
        try:
            conn.do_handshake()
            return
        except SSL.WantReadError:
            _wait(sock, deadline, timeout, write=False)
        except SSL.WantWriteError:
            _wait(sock, deadline, timeout, write=True)
        except SSL.SysCallError as exc:
            raise ProbeError(
                Status.ERROR, f"TLS handshake failed: {_syscall(exc)}"
            ) from exc
        except SSL.Error as exc:
            raise ProbeError(
                Status.ERROR, f"TLS handshake failed: {_ssl_reason(exc)}"
            ) from exc


def _wait(sock: socket.socket, deadline: float, timeout: float, *, write: bool) -> None:
    remaining = deadline - time.monotonic()
    readers, writers = ([], [sock]) if write else ([sock], [])
    if remaining <= 0 or not any(select.select(readers, writers, [], remaining)):
        raise ProbeError(Status.TIMEOUT, f"TLS handshake timed out after {timeout:g}s")


def _syscall(exc: SSL.SysCallError) -> str:
    if exc.args and exc.args[0] == -1:
        return "the server closed the connection"
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


_REASON_HINTS = {
    "wrong version number": "the server does not speak TLS here",
    "unsupported protocol": "no TLS version in common",
    "tlsv1 alert protocol version": "no TLS version in common",
    "sslv3 alert handshake failure": "no cipher suite or group in common",
}


def _ssl_reason(exc: SSL.Error) -> str:
    """OpenSSL's most specific reason, with a plain-words hint where one helps."""
    errors = exc.args[0] if exc.args else []
    reason = str(exc) or type(exc).__name__
    if isinstance(errors, list) and errors and isinstance(errors[-1], tuple):
        reason = str(errors[-1][-1])
    hint = _REASON_HINTS.get(reason)
    return f"{hint} ({reason})" if hint else reason


def _peer_chain(conn: SSL.Connection) -> list[x509.Certificate]:
    try:
        chain = conn.get_peer_cert_chain(as_cryptography=True)
    except (ValueError, x509.InvalidVersion) as exc:
        raise ProbeError(Status.ERROR, f"unreadable certificate: {exc}") from exc
    if not chain:
        raise ProbeError(Status.ERROR, "the server presented no certificate")
    return list(chain)


def _close_notify(conn: SSL.Connection) -> None:
    try:
        conn.shutdown()
    except SSL.Error as exc:  # the peer may already be gone; nothing to report
        log.debug("close_notify not sent: %s", exc)


def _connection_info(conn: SSL.Connection, ocsp_stapled: bool) -> ConnectionInfo:
    return ConnectionInfo(
        protocol=conn.get_protocol_version_name(),
        cipher=conn.get_cipher_name(),
        group=negotiated_group(conn),
        ocsp_stapled=ocsp_stapled,
    )


def negotiated_group(conn: SSL.Connection) -> str | None:
    """The key-exchange group name, e.g. 'X25519MLKEM768', or None."""
    name = _BINDING.lib.SSL_get0_group_name(conn._ssl)
    if name == _BINDING.ffi.NULL:
        return None
    return str(_BINDING.ffi.string(name).decode("ascii", "replace"))

"""The practice lab: deliberately good and bad TLS and SSH endpoints on loopback.

``netwarden lab``, the tests and the benchmarks all point netwarden at these::

    with Lab() as lab:
        endpoint = lab.endpoints["pq-tls"]
        ...  # check endpoint.host:endpoint.port, trusting lab.ca_file

Every certificate comes from throwaway CAs made for this one run; every server
listens on 127.0.0.1 only. A server that cannot run here (no sshd, say) is left
out and its reason put in :attr:`Lab.skipped`.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Protocol

from cryptography import x509
from OpenSSL import SSL

from tools.errors import UsageError
from tools.lab import ca
from tools.lab.ssh_servers import AsyncSshServer, EndpointUnavailable, OpenSshServer
from tools.lab.tls_servers import (
    PyOpenSslServer,
    StdlibTlsServer,
    pyopenssl_context,
    stdlib_context,
)

log = logging.getLogger(__name__)

SERVER_NAME = "localhost"

ENDPOINT_NAMES: tuple[str, ...] = (
    "pq-tls",
    "classical-tls",
    "tls12-only",
    "legacy-tls",
    "expired",
    "wrong-host",
    "self-signed",
    "untrusted-chain",
    "mldsa",
    "weak-rsa",
    "ssh-openssh",
    "ssh-asyncssh",
)

_DESCRIPTIONS: dict[str, str] = {
    "pq-tls": "OpenSSL 4 defaults: X25519MLKEM768 first, TLS 1.2-1.3, OCSP stapled",
    "classical-tls": "system OpenSSL 3.0: classical groups only, TLS 1.2-1.3",
    "tls12-only": "TLS 1.2 only (no TLS 1.3, so no post-quantum key exchange)",
    "legacy-tls": "also accepts TLS 1.0 and 1.1 (RSA key, security level 0)",
    "expired": "certificate expired yesterday",
    "wrong-host": "certificate is for wrong.example, not localhost",
    "self-signed": "self-signed certificate for localhost",
    "untrusted-chain": "leaf + intermediate from a CA that is not in the lab bundle",
    "mldsa": "ML-DSA-65 certificate from an ML-DSA-65 root (post-quantum signatures)",
    "weak-rsa": "RSA-1024 certificate signed with SHA-1 (security level 0)",
    "ssh-openssh": "Debian OpenSSH 9.2: sntrup761x25519 first, no ML-KEM",
    "ssh-asyncssh": "asyncssh: mlkem768x25519-sha256 offered first",
}


@dataclass(frozen=True)
class LabEndpoint:
    """One running lab server and how to reach it."""

    name: str
    protocol: str
    host: str
    port: int
    description: str
    server_name: str
    """The name to send as SNI; ``wrong-host``'s certificate deliberately fails it."""


class _Server(Protocol):
    port: int

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _Material:
    """Keys and certificates for one lab run, each made on first use."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @cached_property
    def root(self) -> ca.CertificateAuthority:
        return ca.CertificateAuthority.root("netwarden lab root CA", ca.ec_key())

    @cached_property
    def mldsa_root(self) -> ca.CertificateAuthority:
        return ca.CertificateAuthority.root("netwarden lab ML-DSA root", ca.mldsa_key())

    @cached_property
    def ec_key(self) -> ca.SigningKey:
        return ca.ec_key()

    @cached_property
    def localhost(self) -> x509.Certificate:
        return self.root.issue(self.ec_key)

    def files(
        self, name: str, chain: list[x509.Certificate], key: ca.SigningKey
    ) -> tuple[Path, Path]:
        """Write ``chain`` and ``key`` for endpoint ``name``; return both paths."""
        chain_file = ca.write_pem(self.workdir / f"{name}.pem", chain)
        return chain_file, ca.write_key(self.workdir / f"{name}.key", key)


_Builder = Callable[[_Material, str, str, int, Path], _Server]


def _stdlib(
    m: _Material, name: str, host: str, port: int, chain: list[x509.Certificate]
) -> StdlibTlsServer:
    """A stdlib server for ``chain`` on the shared EC key, TLS 1.2 and 1.3."""
    context = stdlib_context(*m.files(name, chain, m.ec_key))
    return StdlibTlsServer(name, host, port, context)


def _pq_tls(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    files = m.files(name, [m.localhost], m.ec_key)
    context = pyopenssl_context(*files, ocsp_response=m.root.ocsp_good(m.localhost))
    return PyOpenSslServer(name, host, port, context)


def _classical(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    return _stdlib(m, name, host, port, [m.localhost])


def _tls12(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    files = m.files(name, [m.localhost], m.ec_key)
    context = stdlib_context(*files, maximum=ssl.TLSVersion.TLSv1_2)
    return StdlibTlsServer(name, host, port, context)


def _legacy(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    key = ca.rsa_key(2048)
    files = m.files(name, [m.root.issue(key)], key)
    context = stdlib_context(
        *files, minimum=ssl.TLSVersion.TLSv1, ciphers="DEFAULT:@SECLEVEL=0"
    )
    return StdlibTlsServer(name, host, port, context)


def _expired(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    return _stdlib(m, name, host, port, [m.root.issue(m.ec_key, days=(-30, -1))])


def _wrong_host(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    cert = m.root.issue(m.ec_key, dns=("wrong.example",), ips=())
    return _stdlib(m, name, host, port, [cert])


def _self_signed(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    cert = ca.self_signed(m.ec_key, ips=("127.0.0.1",))
    return _stdlib(m, name, host, port, [cert])


def _untrusted(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    other = ca.CertificateAuthority.root("netwarden lab other root", ca.ec_key())
    intermediate = other.intermediate("netwarden lab other issuing CA", ca.ec_key())
    leaf = intermediate.issue(m.ec_key)
    return _stdlib(m, name, host, port, [leaf, intermediate.cert])


def _mldsa(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    key = ca.mldsa_key()
    files = m.files(name, [m.mldsa_root.issue(key)], key)
    return PyOpenSslServer(name, host, port, pyopenssl_context(*files))


def _weak_rsa(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    key = ca.rsa_key(1024)
    cert = m.root.resign_sha1(m.root.issue(key))
    files = m.files(name, [cert], key)
    context = pyopenssl_context(*files, seclevel0=True)
    return PyOpenSslServer(name, host, port, context)


def _openssh(m: _Material, name: str, host: str, port: int, workdir: Path) -> _Server:
    return OpenSshServer(name, host, port, workdir)


def _asyncssh(m: _Material, name: str, host: str, port: int, _: Path) -> _Server:
    return AsyncSshServer(name, host, port)


_BUILDERS: dict[str, _Builder] = {
    "pq-tls": _pq_tls,
    "classical-tls": _classical,
    "tls12-only": _tls12,
    "legacy-tls": _legacy,
    "expired": _expired,
    "wrong-host": _wrong_host,
    "self-signed": _self_signed,
    "untrusted-chain": _untrusted,
    "mldsa": _mldsa,
    "weak-rsa": _weak_rsa,
    "ssh-openssh": _openssh,
    "ssh-asyncssh": _asyncssh,
}


def _check_names(names: Iterable[str] | None) -> list[str]:
    chosen = list(ENDPOINT_NAMES) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in _BUILDERS]
    if unknown:
        raise UsageError(
            f"unknown lab endpoint(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ENDPOINT_NAMES)}"
        )
    return chosen


class Lab:
    """A set of lab endpoints started and stopped together.

    ``base_port`` 0 gives every endpoint a free ephemeral port; ``base_port`` N gives
    the i-th name of :data:`ENDPOINT_NAMES` port N + i, whichever names were chosen.
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        base_port: int = 0,
        workdir: Path | None = None,
    ) -> None:
        self.names = _check_names(names)
        self.host = host
        self.base_port = base_port
        self.endpoints: dict[str, LabEndpoint] = {}
        self.skipped: dict[str, str] = {}
        self._given_workdir = workdir
        self._workdir: Path | None = None
        self._servers: dict[str, _Server] = {}

    @property
    def ca_file(self) -> Path:
        """PEM bundle of the lab's root CAs (EC P-256 first, then ML-DSA-65)."""
        if self._workdir is None:
            raise RuntimeError("the lab is not started")
        return self._workdir / "lab-ca.pem"

    def start(self) -> Lab:
        """Start every chosen endpoint; return ``self``."""
        if self._workdir is not None:
            return self
        began = time.monotonic()
        self._workdir = self._make_workdir()
        try:
            material = _Material(self._workdir)
            self._write_ca_file(material)
            for name in self.names:
                self._start_one(name, material)
        except BaseException:
            self.stop()
            raise
        log.info(
            "lab started %d endpoints (%d skipped) in %.2f s",
            len(self.endpoints),
            len(self.skipped),
            time.monotonic() - began,
        )
        return self

    def _make_workdir(self) -> Path:
        if self._given_workdir is None:
            return Path(tempfile.mkdtemp(prefix="netwarden-lab-"))
        self._given_workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self._given_workdir

    def _write_ca_file(self, material: _Material) -> None:
        roots = [material.root.cert]
        if "mldsa" in self.names:
            roots.append(material.mldsa_root.cert)
        ca.write_pem(self.ca_file, roots)

    def _port_for(self, name: str) -> int:
        return self.base_port + ENDPOINT_NAMES.index(name) if self.base_port else 0

    def _start_one(self, name: str, material: _Material) -> None:
        assert self._workdir is not None
        try:
            server = _BUILDERS[name](
                material, name, self.host, self._port_for(name), self._workdir
            )
            server.start()
        except EndpointUnavailable as exc:
            self.skipped[name] = str(exc)
            return
        except (OSError, RuntimeError, ValueError, SSL.Error) as exc:
            log.warning("lab endpoint %s did not start: %s", name, exc)
            self.skipped[name] = f"failed to start: {exc}"
            return
        self._servers[name] = server
        self.endpoints[name] = self._endpoint(name, server.port)

    def _endpoint(self, name: str, port: int) -> LabEndpoint:
        protocol = "ssh" if name.startswith("ssh-") else "tls"
        return LabEndpoint(
            name=name,
            protocol=protocol,
            host=self.host,
            port=port,
            description=_DESCRIPTIONS[name],
            server_name=SERVER_NAME if protocol == "tls" else "",
        )

    def stop(self) -> None:
        """Stop every server and remove the lab's temporary directory. Idempotent."""
        servers, self._servers = self._servers, {}
        for name, server in servers.items():
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                log.warning("lab endpoint %s did not stop cleanly: %s", name, exc)
        self.endpoints.clear()
        if self._workdir is not None and self._given_workdir is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None

    def set_groups(self, name: str, groups: str) -> None:
        """Change the groups a pyOpenSSL endpoint accepts, e.g. ``"X25519"``."""
        server = self._servers.get(name)
        if not isinstance(server, PyOpenSslServer):
            raise UsageError(f"{name!r} is not a running pyOpenSSL TLS endpoint")
        try:
            server.set_groups(groups)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["ENDPOINT_NAMES", "Lab", "LabEndpoint"]

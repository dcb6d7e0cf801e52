"""Threaded TLS servers for the practice lab.

Two flavours share one accept loop: :class:`StdlibTlsServer` runs on Python's ``ssl``
(the system OpenSSL, 3.0 on Debian 12: no post-quantum groups) and
:class:`PyOpenSslServer` runs on pyOpenSSL (the OpenSSL bundled in ``cryptography``,
which speaks X25519MLKEM768 and ML-DSA). Each connection gets its own thread, does
the handshake, answers one request with a tiny HTTP reply and hangs up. A client
that sends a ClientHello and vanishes only ends its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL

log = logging.getLogger(__name__)

IO_TIMEOUT = 10.0
"""Seconds a connection may stay silent (nmap waits 6 s before probing)."""

_T = TypeVar("_T")


class ThreadedServer:
    """A TCP listener that serves every connection on its own daemon thread."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    def start(self) -> None:
        """Bind, listen and start accepting; ``port`` 0 picks a free port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"lab-{self.name}", daemon=True
        )
        self._acceptor.start()
        log.debug("lab %s listening on %s:%d", self.name, self.host, self.port)

    def stop(self) -> None:
        """Stop accepting, cut open connections and wait for their threads."""
        self._stopping.set()
        if self._listener is not None:
            _shutdown(self._listener)  # wakes a blocked accept() on Linux
        if self._acceptor is not None:
            self._acceptor.join(timeout=2)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns = dict(self._conns)
        for sock in conns.values():
            _shutdown(sock)
        for thread in conns:
            thread.join(timeout=2)

    def handle(self, sock: socket.socket) -> None:
        """Serve one accepted connection; subclasses override this."""
        raise NotImplementedError

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"lab-{self.name}-conn"
            )
            thread.daemon = True
            with self._lock:
                self._conns[thread] = sock
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.handle(sock)
        except Exception as exc:  # a peer must never kill the server
            log.debug("lab %s: connection ended: %s", self.name, exc)
        finally:
            sock.close()
            with self._lock:
                self._conns.pop(threading.current_thread(), None)

    def track(self, sock: socket.socket) -> None:
        """Make ``sock`` (e.g. its TLS wrapper) the one :meth:`stop` shuts down."""
        with self._lock:
            self._conns[threading.current_thread()] = sock


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def http_reply(name: str) -> bytes:
    """The small HTTP answer every lab TLS endpoint gives to any request."""
    body = f"netwarden lab endpoint {name}\n".encode()
    head = (
        "HTTP/1.0 200 OK\r\nServer: netwarden-lab\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


# --- stdlib ssl -------------------------------------------------------------------


def stdlib_context(
    chain_file: Path,
    key_file: Path,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A server context on the system OpenSSL with the given version range."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    context.load_cert_chain(chain_file, key_file)
    return context


class StdlibTlsServer(ThreadedServer):
    """A lab TLS endpoint served by Python's ``ssl`` module."""

    def __init__(
        self, name: str, host: str, port: int, context: ssl.SSLContext
    ) -> None:
        super().__init__(name, host, port)
        self.context = context

    def handle(self, sock: socket.socket) -> None:
        sock.settimeout(IO_TIMEOUT)
        with self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ) as tls:
            self.track(tls)
            tls.do_handshake()
            if tls.recv(4096):
                tls.sendall(http_reply(self.name))


# --- pyOpenSSL ----------------------------------------------------------------------


def pyopenssl_context(
    chain_file: Path,
    key_file: Path,
    *,
    minimum: int = SSL.TLS1_2_VERSION,
    seclevel0: bool = False,
    ocsp_response: bytes | None = None,
) -> SSL.Context:
    """A server context on cryptography's OpenSSL with its default groups."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(minimum)
    if seclevel0:
        context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    context.use_certificate_chain_file(str(chain_file))
    context.use_privatekey_file(str(key_file))
    context.check_privatekey()
    if ocsp_response is not None:
        context.set_ocsp_server_callback(_staple(ocsp_response))
    return context


def _staple(response: bytes) -> Callable[[SSL.Connection, object], bytes]:
    def callback(conn: SSL.Connection, data: object) -> bytes:
        return response

    return callback


class PyOpenSslServer(ThreadedServer):
    """A lab TLS endpoint served by pyOpenSSL; its groups can change at runtime."""

    def __init__(self, name: str, host: str, port: int, context: SSL.Context) -> None:
        super().__init__(name, host, port)
        self.context = context
        self._groups_lock = threading.Lock()

    def set_groups(self, groups: str) -> None:
        """Accept only ``groups`` (OpenSSL list syntax) on new connections."""
        lib = Binding.lib
        with self._groups_lock:
            handle = self.context._context
            if lib.SSL_CTX_set1_curves_list(handle, groups.encode("ascii")) != 1:
                lib.ERR_clear_error()
                raise ValueError(f"OpenSSL rejected the group list {groups!r}")
        log.info("lab %s now accepts groups %s", self.name, groups)

    def handle(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        with self._groups_lock:
            conn = SSL.Connection(self.context, sock)
        conn.set_accept_state()
        deadline = time.monotonic() + IO_TIMEOUT
        _retry(conn.do_handshake, sock, deadline)
        if _retry(lambda: conn.recv(4096), sock, deadline):
            _retry(lambda: conn.sendall(http_reply(self.name)), sock, deadline)
        conn.shutdown()


def _retry(call: Callable[[], _T], sock: socket.socket, deadline: float) -> _T:
    """Run a non-blocking pyOpenSSL call until it completes or ``deadline``."""
    while True:
        try:
            return call()
        except SSL.WantReadError:
            _wait(sock, select.POLLIN, deadline)
        except SSL.WantWriteError:
            _wait(sock, select.POLLOUT, deadline)


def _wait(sock: socket.socket, events: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    poller = select.poll()
    poller.register(sock, events)
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise TimeoutError("peer went silent")

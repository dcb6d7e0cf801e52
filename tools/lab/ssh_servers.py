"""SSH servers for the practice lab: the system's OpenSSH and an asyncssh one.

Neither lets anyone log in: they exist to answer the banner and the key exchange
offer (KEXINIT), which is all the SSH checks read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import asyncssh

log = logging.getLogger(__name__)

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 5.0


class EndpointUnavailable(Exception):
    """An endpoint cannot run on this machine; the message says what to install."""


def wait_for_port(host: str, port: int, deadline: float) -> bool:
    """Poll until ``host:port`` accepts a TCP connection or ``deadline`` passes."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def free_port(host: str) -> int:
    """A port the kernel considers free right now, for servers that need a number."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class OpenSshServer:
    """Debian's ``sshd`` as a subprocess with its own config and host keys."""

    def __init__(self, name: str, host: str, port: int, workdir: Path) -> None:
        self.name = name
        self.host = host
        self.port = port or free_port(host)
        self.workdir = workdir / name
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Generate host keys, write the config, start sshd and wait for the port."""
        keygen = shutil.which("ssh-keygen")
        if not os.path.isfile(SSHD) or keygen is None:
            raise EndpointUnavailable("install openssh-server")
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        config = self._write_config(self._host_keys(keygen))
        log_file = (self.workdir / "sshd.log").open("wb")
        with log_file:
            self._process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                start_new_session=True,  # Ctrl-C in a terminal goes to us only
            )
        self._wait_ready()

    def _host_keys(self, keygen: str) -> list[Path]:
        keys = []
        for kind in ("ed25519", "ecdsa"):
            path = self.workdir / f"ssh_host_{kind}_key"
            subprocess.run(
                [keygen, "-q", "-t", kind, "-N", "", "-f", str(path)],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )
            keys.append(path)
        return keys

    def _write_config(self, host_keys: list[Path]) -> Path:
        lines = [f"HostKey {key}" for key in host_keys] + [
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            f"PidFile {self.workdir / 'sshd.pid'}",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication no",
            "AuthorizedKeysFile none",
            "PermitRootLogin no",
            "LoginGraceTime 15",
            "MaxStartups 100:30:200",
            "LogLevel ERROR",
        ]
        config = self.workdir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        return config

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self._log_tail()}")
            if wait_for_port(self.host, self.port, time.monotonic() + 0.2):
                return
        self.stop()
        raise RuntimeError(f"sshd did not open port {self.port} in {START_TIMEOUT} s")

    def _log_tail(self) -> str:
        text = (self.workdir / "sshd.log").read_text(errors="replace").strip()
        return text.splitlines()[-1] if text else "no output"

    def stop(self) -> None:
        """Kill sshd and every child it forked for a connection."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # connection children call setsid(), so find them by parent, not by group
        for pid in [*_descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=3)


def _descendants(root: int) -> list[int]:
    """Process ids below ``root``, read from /proc (children first)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found = children + found
        frontier = children
    return found


class AsyncSshServer:
    """An asyncssh server on its own thread and event loop; offers ML-KEM first."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"lab-{name}")
        self._thread.daemon = True
        self._server: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    def start(self) -> None:
        """Start the loop thread and wait until the server listens."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("asyncssh server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"asyncssh server failed: {self._error}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._listen())
        except Exception as exc:
            self._error = exc
        self._ready.set()
        if self._error is None:
            self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _listen(self) -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._server = await asyncssh.create_server(
            lambda: _NoLoginServer(self._connections),
            self.host,
            self.port,
            server_host_keys=[host_key],
            login_timeout=15,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close the listener and connections, stop the loop, join the thread."""
        if not self._thread.is_alive():
            return
        closing = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        try:
            closing.result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for conn in list(self._connections):
            conn.abort()
        await asyncio.sleep(0)


class _NoLoginServer(asyncssh.SSHServer):
    """Refuses every login and remembers its connection so stop() can cut it."""

    def __init__(self, registry: set[asyncssh.SSHServerConnection]) -> None:
        self._registry = registry
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._registry.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._registry.discard(self._conn)

    def password_auth_supported(self) -> bool:
        return False

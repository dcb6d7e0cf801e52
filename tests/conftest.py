"""Shared fixtures: the practice lab of real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tools.lab import Lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Every lab endpoint, running for the whole session; fails if one did not start.

    Do not call ``set_groups`` on this shared lab: start a ``Lab(["pq-tls"])`` of
    your own for that.
    """
    with Lab() as running:
        if running.skipped:
            reasons = "; ".join(f"{n}: {why}" for n, why in running.skipped.items())
            pytest.fail(f"lab endpoints did not start: {reasons}", pytrace=False)
        yield running


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Start = Callable[[Handler], Awaitable[int]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Start]:
    """Start plain TCP servers on 127.0.0.1 that run a scripted ``handler``.

    Calling the fixture's value with a handler returns the new server's port; every
    server started is closed at the end of the test.
    """
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


class Listener:
    """A TCP listener that counts the connections it receives.

    By default it listens on 127.0.0.2 and hangs up at once; ``hold=True`` keeps
    each connection open without a word (a server that never answers).
    """

    def __init__(self, host: str = "127.0.0.2", hold: bool = False) -> None:
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hold = hold
        self.held: list[socket.socket] = []
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            if self.hold:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def bystander() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()

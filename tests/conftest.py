"""Shared fixtures: the practice lab of real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
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

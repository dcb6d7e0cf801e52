"""One daemon cycle over 1,000 TLS endpoints on loopback: wall time and peak RSS.

A child process listens on ``--ports`` ports on each of ``--hosts`` loopback
addresses (127.0.0.1, 127.0.0.2, ...). Every other listener accepts the
post-quantum hybrid X25519MLKEM768 (pyOpenSSL on OpenSSL 4 defaults); the rest
are narrowed to classical X25519 and P-256, like the lab's ``pq-tls`` after
``set_groups``. The benchmark then runs the post-quantum check on every endpoint
once, the way the daemon does: with the daemon's own scheduler (``Scheduler.run_once``:
check, SQLite history, change detection, metrics; the default when it exists), or
with ``--mode batch`` through ``tools.runner.run_batch`` at the same concurrency.

Goals (issue 5): a cycle under 60 s and peak RSS under 300 MB on 2 cores.

    .venv/bin/python bench/daemon_cycle.py [--hosts 10 --ports 100 --concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.util
import multiprocessing
import multiprocessing.connection
import resource
import select
import selectors
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL

from tools.lab import ca
from tools.lab.tls_servers import pyopenssl_context
from tools.models import PqResult, Status

GOAL_SECONDS = 60.0
GOAL_RSS_MB = 300.0
CLASSICAL_GROUPS = b"X25519:secp256r1"
IO_TIMEOUT = 5.0

Endpoint = tuple[str, int, str]


# --- the servers (child process)


def _contexts(workdir: Path) -> dict[str, SSL.Context]:
    """A post-quantum and a classical server context on one lab-style certificate."""
    root = ca.CertificateAuthority.root("netwarden bench root CA", ca.ec_key())
    key = ca.ec_key()
    chain = ca.write_pem(workdir / "bench.pem", [root.issue(key)])
    key_file = ca.write_key(workdir / "bench.key", key)
    pq = pyopenssl_context(chain, key_file)
    classical = pyopenssl_context(chain, key_file)
    if Binding.lib.SSL_CTX_set1_curves_list(classical._context, CLASSICAL_GROUPS) != 1:
        raise RuntimeError("OpenSSL rejected the classical group list")
    return {"pq": pq, "classical": classical}


def _listen(hosts: int, ports: int) -> list[tuple[socket.socket, str]]:
    """Listening sockets on ``ports`` free ports of each of ``hosts`` addresses."""
    listeners = []
    for h in range(1, hosts + 1):
        for p in range(ports):
            sock = socket.create_server((f"127.0.0.{h}", 0), backlog=64)
            sock.setblocking(False)
            listeners.append((sock, "pq" if p % 2 == 0 else "classical"))
    return listeners


def _wait(sock: socket.socket, events: int, deadline: float) -> None:
    poller = select.poll()
    poller.register(sock, events)
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise TimeoutError("peer went silent")


def _step(call: Any, sock: socket.socket, deadline: float) -> Any:
    while True:
        try:
            return call()
        except SSL.WantReadError:
            _wait(sock, select.POLLIN, deadline)
        except SSL.WantWriteError:
            _wait(sock, select.POLLOUT, deadline)


def _serve_one(sock: socket.socket, context: SSL.Context) -> None:
    """Handshake, read one request, answer, hang up; any failure just closes."""
    try:
        sock.setblocking(False)
        conn = SSL.Connection(context, sock)
        conn.set_accept_state()
        deadline = time.monotonic() + IO_TIMEOUT
        _step(conn.do_handshake, sock, deadline)
        if _step(lambda: conn.recv(4096), sock, deadline):
            _step(lambda: conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n"), sock, deadline)
        conn.shutdown()
    except (SSL.Error, OSError, TimeoutError):
        pass
    finally:
        sock.close()


def serve(hosts: int, ports: int, ready: multiprocessing.connection.Connection) -> None:
    """Child process: serve every listener until the parent closes ``ready``."""
    with tempfile.TemporaryDirectory(prefix="netwarden-bench-") as tmp:
        contexts = _contexts(Path(tmp))
        listeners = _listen(hosts, ports)
        selector = selectors.DefaultSelector()
        for sock, kind in listeners:
            selector.register(sock, selectors.EVENT_READ, kind)
        selector.register(ready, selectors.EVENT_READ, None)
        ready.send([(*s.getsockname()[:2], kind) for s, kind in listeners])
        with ThreadPoolExecutor(max_workers=96) as pool:
            _accept_loop(selector, contexts, pool)


def _accept_loop(
    selector: selectors.BaseSelector,
    contexts: dict[str, SSL.Context],
    pool: ThreadPoolExecutor,
) -> None:
    while True:
        for key, _ in selector.select():
            if key.data is None:  # the parent is done
                return
            with contextlib.suppress(BlockingIOError):
                conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                pool.submit(_serve_one, conn, contexts[key.data])


# --- the cycle (this process)


def _targets(endpoints: list[Endpoint]) -> list[str]:
    return [f"{host}:{port}" for host, port, _ in endpoints]


async def _cycle_scheduler(endpoints: list[Endpoint], concurrency: int) -> list[Any]:
    """One ``Scheduler.run_once`` over every endpoint, history in a temporary DB."""
    from agent.daemon.config import DaemonConfig
    from agent.daemon.metrics import Metrics
    from agent.daemon.scheduler import Scheduler
    from agent.daemon.store import Store

    with tempfile.TemporaryDirectory(prefix="netwarden-bench-db-") as tmp:
        config = DaemonConfig.model_validate(
            {
                "daemon": {
                    "db": str(Path(tmp) / "bench.db"),
                    "concurrency": concurrency,
                },
                "scope": {"allow": ["127.0.0.0/8"]},
                "targets": [
                    {"host": h, "port": p, "checks": ["pq"]} for h, p, _ in endpoints
                ],
            }
        )
        store = Store(config.daemon.db)
        try:
            scheduler = Scheduler(config, store, None, Metrics())
            await scheduler.run_once()
            return [r.result() for r in store.status()]
        finally:
            store.close()


async def _cycle_batch(endpoints: list[Endpoint], concurrency: int) -> list[Any]:
    """``run_batch`` of the post-quantum check at the daemon's concurrency."""
    from tools import runner
    from tools.scope import Scope

    options = runner.Options(scope=Scope.from_entries(["127.0.0.0/8"]))
    return await runner.run_batch(
        lambda raw: runner.run_pq(raw, options), _targets(endpoints), concurrency
    )


def _summary(results: list[Any], endpoints: list[Endpoint]) -> dict[str, int]:
    """Counts of statuses and key-exchange postures, checked against the setup."""
    counts: collections.Counter[str] = collections.Counter()
    expected = {f"{h}:{p}": kind for h, p, kind in endpoints}
    for result in results:
        if not isinstance(result, PqResult) or result.status is not Status.OK:
            counts[f"status {getattr(result, 'status', '?')}"] += 1
            continue
        posture = result.verdict.key_exchange if result.verdict else "none"
        counts[f"key exchange {posture}"] += 1
        want = "quantum-safe" if expected.get(result.target) == "pq" else "vulnerable"
        counts["as expected" if posture == want else "unexpected"] += 1
    return dict(counts)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--ports", type=int, default=100, help="per host")
    parser.add_argument("--concurrency", type=int, default=8, help="checks at once")
    parser.add_argument(
        "--mode", choices=["auto", "scheduler", "batch"], default="auto"
    )
    args = parser.parse_args()
    if args.mode == "auto":
        has_scheduler = importlib.util.find_spec("agent.daemon.scheduler") is not None
        args.mode = "scheduler" if has_scheduler else "batch"

    # start the servers and learn their ports
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(args.hosts, args.ports, theirs), daemon=True
    )
    server.start()
    endpoints: list[Endpoint] = ours.recv()
    print(f"{len(endpoints)} endpoints on {args.hosts} loopback addresses")
    rss_before = _rss_mb()

    # one cycle
    cycle = _cycle_scheduler if args.mode == "scheduler" else _cycle_batch
    began = time.perf_counter()
    results = asyncio.run(cycle(endpoints, args.concurrency))
    wall = time.perf_counter() - began
    ours.close()
    server.join(timeout=10)
    return _report(args, endpoints, results, wall, rss_before)


def _report(
    args: argparse.Namespace,
    endpoints: list[Endpoint],
    results: list[Any],
    wall: float,
    rss_before: float,
) -> int:
    rss = _rss_mb()
    summary = _summary(results, endpoints)
    ok_wall, ok_rss = wall < GOAL_SECONDS, rss < GOAL_RSS_MB
    complete = len(results) == len(endpoints) and summary.get("as expected") == len(
        endpoints
    )
    print(f"mode {args.mode}, concurrency {args.concurrency}, {len(results)} results")
    for key, count in sorted(summary.items()):
        print(f"  {key}: {count}")
    print(f"wall time  {wall:7.1f} s   goal < {GOAL_SECONDS:.0f} s   {_ok(ok_wall)}")
    print(f"peak RSS   {rss:7.1f} MB  goal < {GOAL_RSS_MB:.0f} MB  {_ok(ok_rss)}")
    print(f"  (RSS after imports, before the cycle: {rss_before:.1f} MB)")
    print(f"every endpoint checked with the expected verdict: {_ok(complete)}")
    return 0 if ok_wall and ok_rss and complete else 1


def _ok(flag: bool) -> str:
    return "ok" if flag else "MISSED"


if __name__ == "__main__":
    sys.exit(main())

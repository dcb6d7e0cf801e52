"""The daemon's small HTTP endpoint: ``/healthz`` and Prometheus ``/metrics``.

Plain asyncio, no framework: one request per connection, answered and closed.
``GET /healthz`` answers JSON ``{"status": "ok", ...health()}``; ``GET /metrics``
answers the text exposition; any other path is 404 and any other method 405. A
request that is malformed, too large or too slow gets a 400 or 408 (or is simply
closed) and never disturbs the server. Meant for localhost: a non-loopback host is
allowed (a container's scraper needs it) but logged as a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from agent.daemon.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0
"""Seconds a client may take to send its whole request head."""

MAX_LINE = 8192
MAX_HEADERS = 100

Health = Callable[[], dict[str, object]]


@dataclass(frozen=True)
class Response:
    """A status line, a content type and a body."""

    status: int
    reason: str
    content_type: str
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()


class BadRequest(Exception):
    """The request head could not be parsed."""


async def serve_http(
    metrics: Metrics, host: str, port: int, health: Health
) -> asyncio.Server:
    """Start the endpoint on ``host:port`` (0 picks a free port); return the server."""
    if not _is_loopback(host):
        log.warning("metrics endpoint listens on non-loopback address %s", host)

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _serve_one(reader, writer, metrics, health)

    server = await asyncio.start_server(handle, host, port, limit=MAX_LINE)
    log.info("metrics endpoint listening on %s", _bound(server))
    return server


async def _serve_one(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    metrics: Metrics,
    health: Health,
) -> None:
    """Read one request head, answer it, close the connection; never raise."""
    try:
        method, path = await asyncio.wait_for(_read_head(reader), READ_TIMEOUT)
        response = _route(method, path, metrics, health)
    except TimeoutError:
        response = _text(408, "Request Timeout", "request timeout\n")
    except BadRequest as exc:
        response = _text(400, "Bad Request", f"bad request: {exc}\n")
    except ConnectionError:
        await _close(writer)
        return
    await _write(writer, response)


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path of the request; the headers are read and ignored."""
    request_line = await _read_line(reader)
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, _ = parts
    if not method.isalpha() or not method.isupper() or not target.startswith("/"):
        raise BadRequest("malformed request line")
    for _ in range(MAX_HEADERS):
        if not await _read_line(reader):
            return method, target.split("?", 1)[0]
    raise BadRequest("too many header lines")


async def _read_line(reader: asyncio.StreamReader) -> str:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("line too long") from exc
    except asyncio.IncompleteReadError as exc:
        raise BadRequest("connection closed before the end of the head") from exc
    try:
        return raw.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BadRequest("non-ASCII bytes in the head") from exc


def _route(method: str, path: str, metrics: Metrics, health: Health) -> Response:
    if path not in ("/healthz", "/metrics"):
        return _text(404, "Not Found", "not found\n")
    if method != "GET":
        return _text(
            405, "Method Not Allowed", "method not allowed\n", (("Allow", "GET"),)
        )
    if path == "/metrics":
        body = metrics.render().encode("utf-8")
        return Response(200, "OK", CONTENT_TYPE, body)
    return _health(health)


def _health(health: Health) -> Response:
    """Health as JSON; a failing health callback is a 500, not a dropped socket."""
    try:
        document: dict[str, object] = {"status": "ok", **health()}
        body = json.dumps(document, default=str).encode("utf-8")
    except Exception as exc:
        log.exception("health callback failed")
        body = json.dumps({"status": "error", "error": str(exc)}).encode("utf-8")
        return Response(500, "Internal Server Error", "application/json", body)
    return Response(200, "OK", "application/json", body)


def _text(
    status: int, reason: str, text: str, extra: tuple[tuple[str, str], ...] = ()
) -> Response:
    return Response(status, reason, "text/plain; charset=utf-8", text.encode(), extra)


async def _write(writer: asyncio.StreamWriter, response: Response) -> None:
    headers = [
        f"HTTP/1.1 {response.status} {response.reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in response.extra_headers),
    ]
    head = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii")
    try:
        writer.write(head + response.body)
        await writer.drain()
    except ConnectionError:
        log.debug("client went away before the response was written")
    await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bound(server: asyncio.Server) -> str:
    names = [str(sock.getsockname()[:2]) for sock in server.sockets]
    return ", ".join(names) or "?"

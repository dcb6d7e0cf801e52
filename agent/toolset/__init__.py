"""The model's tools: thin wrappers over :mod:`tools.runner` with tight schemas.

Each tool returns ``(compact text, typed result)``: LangChain gives the text to the
model and keeps the result as the tool message's artifact for front ends. Passive
tools do one handshake's worth of probing; active ones (:data:`ACTIVE_TOOLS`) scan and
need approval. Scope is enforced inside the runner, so an out-of-scope target comes
back as a result with status ``out-of-scope`` and nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from agent.toolset.render import render_result
from agent.toolset.schemas import FullCheckArgs, NmapScanArgs, PqCheckArgs, TlsCheckArgs
from agent.toolset.texts import tool_texts
from tools import runner
from tools.models import AnyResult
from tools.targets import parse_ports

log = logging.getLogger(__name__)

ACTIVE_TOOLS = frozenset({"nmap_scan", "full_check"})
PASSIVE_TOOLS = frozenset({"tls_check", "pq_check"})

T = TypeVar("T")
ToolOutput = tuple[str, AnyResult]


def build_tools(options: runner.Options) -> list[BaseTool]:
    """The four tools, bound to ``options`` (scope, timeouts, CA bundle)."""

    def tls_check(target: str) -> ToolOutput:
        return _finish("tls_check", run_sync(runner.run_tls(target, options)))

    def pq_check(target: str) -> ToolOutput:
        return _finish("pq_check", run_sync(runner.run_pq(target, options)))

    def nmap_scan(
        target: str, profile: str = "quick", ports: str | None = None
    ) -> ToolOutput:
        port_list = parse_ports(ports) if ports else None
        scan = runner.run_scan(target, options, profile=profile, ports=port_list)
        return _finish("nmap_scan", run_sync(scan))

    def full_check(target: str, ports: str | None = None) -> ToolOutput:
        port_list = parse_ports(ports) if ports else None
        check = runner.run_check(target, options, ports=port_list)
        return _finish("full_check", run_sync(check))

    return [
        _tool(tls_check, TlsCheckArgs),
        _tool(pq_check, PqCheckArgs),
        _tool(nmap_scan, NmapScanArgs),
        _tool(full_check, FullCheckArgs),
    ]


def _tool(func: Callable[..., ToolOutput], schema: type[BaseModel]) -> BaseTool:
    name = func.__name__
    return StructuredTool.from_function(
        func=func,
        name=name,
        description=tool_texts().description(name),
        args_schema=schema,
        response_format="content_and_artifact",
    )


def _finish(tool: str, result: AnyResult) -> ToolOutput:
    log.info("tool %s %s: %s", tool, result.target, result.status)
    return render_result(tool, result), result


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """Run a runner coroutine to completion from synchronous code, in any thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()

"""``netwarden model list|pull``: the local GGUF models the agent can run.

``list`` shows the embedded model, every catalogue file (installed or not) and
other GGUFs in the models directory, marking the active one. ``pull`` downloads
a catalogue model through huggingface_hub with a progress bar on stderr, checks
its SHA-256 against the hub's, and says how to use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from agent import models
from agent.cli import render
from agent.settings import Settings, default_config_path


@click.group()
def model() -> None:
    """Local models: list what is known and installed, pull GGUFs from the hub."""


@model.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def list_command(settings: Settings, as_json: bool) -> None:
    """Show the embedded model, the catalogue and what is installed."""
    entries = models.list_models(settings)
    directory = models.models_dir(settings)
    if as_json:
        rows = [_entry_json(e) for e in entries]
        click.echo(json.dumps({"models_dir": str(directory), "models": rows}, indent=2))
        return
    render.out.print(_entry_table(entries))
    render.out.print(Text(f"models directory: {directory}", style="dim"))


@model.command("pull")
@click.argument("name")
@click.option("-q", "--quant", help="Quantisation, e.g. Q4_K_M (default per model).")
@click.option(
    "--endpoint",
    help="Hub URL (default: $HF_ENDPOINT, else https://huggingface.co).",
)
@click.pass_obj
def pull_command(
    settings: Settings, name: str, quant: str | None, endpoint: str | None
) -> None:
    """Download model NAME into the models directory and verify its SHA-256."""
    directory = models.models_dir(settings)
    with _download_bar(name) as on_bytes:
        path = models.pull(name, quant, directory, endpoint=endpoint, progress=on_bytes)
    render.out.print(Text(f"ready: {path} (SHA-256 verified)", style="green"))
    render.out.print(_usage_hint(path))


def _entry_table(entries: list[models.ModelEntry]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "model", "quant", "size"):
        table.add_column(column, no_wrap=True)
    table.add_column("installed at", overflow="fold")
    for entry in entries:
        table.add_row(
            Text("*", style="bold green") if entry.active else Text(""),
            Text(entry.name),
            Text(entry.quant or "-"),
            Text(_size(entry)),
            _where(entry),
        )
    table.caption = (
        "* active model; get others with: netwarden model pull NAME -q QUANT"
    )
    return table


def _size(entry: models.ModelEntry) -> str:
    if entry.size_bytes is None:
        return "?"
    prefix = "" if entry.installed else "~"
    return f"{prefix}{entry.size_bytes / 1e9:.2f} GB"


def _where(entry: models.ModelEntry) -> Text:
    if entry.installed and entry.path is not None:
        return Text(str(entry.path))
    if entry.kind == "catalogue":
        return Text("-", style="dim")
    return Text(f"missing: {entry.path}", style="red")


def _entry_json(entry: models.ModelEntry) -> dict[str, object]:
    return {
        "name": entry.name,
        "quant": entry.quant,
        "kind": entry.kind,
        "path": str(entry.path) if entry.path is not None else None,
        "installed": entry.installed,
        "active": entry.active,
        "size_bytes": entry.size_bytes,
    }


def _usage_hint(path: Path) -> Text:
    config = os.environ.get("NETWARDEN_CONFIG") or default_config_path()
    return Text(
        f"use it: put this in {config}\n"
        f'  [model]\n  path = "{path}"\n'
        f"or pass --model {path}"
    )


@contextmanager
def _download_bar(name: str) -> Iterator[models.ProgressCallback]:
    """A rich download bar on stderr when it is a terminal, else nothing."""
    if not render.err.is_terminal:
        yield lambda _done, _total: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=render.err,
        transient=True,
    )
    task: list[TaskID] = []

    def on_bytes(done: int, total: int | None) -> None:
        if not task:
            task.append(bar.add_task(name, total=total))
        bar.update(task[0], completed=done, total=total)

    with bar:
        yield on_bytes

"""Prompt text shipped in the ``prompts`` package (read with importlib.resources)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template


@cache
def load(name: str) -> str:
    """The text of ``prompts/<name>``, without its final newline."""
    return files("prompts").joinpath(name).read_text(encoding="utf-8").rstrip("\n")


def fill(name: str, **values: str) -> str:
    """The prompt ``name`` with its ``$placeholders`` replaced by ``values``."""
    return Template(load(name)).substitute(values)

"""What a GGUF says about itself: architecture, name, chat template, format family.

The family decides how the runtime renders a conversation:

- ``glm4``: GLM-4-0414 / GLM-Z1-0414 (architecture glm4, or a template with
  ``[gMASK]`` and ``<|observation|>``); ``reasoning`` when the model thinks first (Z1)
- ``chatml``: ``<|im_start|>`` templates (SmolLM2, Qwen)
- ``llama3``: ``<|start_header_id|>`` templates

An unknown model is run as ``chatml`` with a logged warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.runtime.errors import ModelError

log = logging.getLogger(__name__)

Family = Literal["glm4", "chatml", "llama3"]
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFInfo:
    """The few metadata fields the runtime needs."""

    architecture: str
    name: str
    chat_template: str
    family: Family
    reasoning: bool


def check_gguf_file(path: Path) -> None:
    """Raise ModelError unless ``path`` is a readable file that starts like a GGUF."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (bad magic bytes)")


def info_from_metadata(metadata: Mapping[str, str], path: Path) -> GGUFInfo:
    """Build GGUFInfo from llama.cpp's metadata strings (``Llama.metadata``)."""
    architecture = metadata.get("general.architecture", "")
    template = metadata.get("tokenizer.chat_template", "")
    name = metadata.get("general.name", "") or path.stem
    family = choose_family(architecture, template, name)
    reasoning = family == "glm4" and ("<think>" in template or "z1" in name.lower())
    return GGUFInfo(architecture, name, template, family, reasoning)


def read_info(path: Path) -> GGUFInfo:
    """Read GGUFInfo straight from the file (no model load) with the gguf package."""
    from gguf import GGUFReader

    check_gguf_file(path)
    try:
        reader = GGUFReader(path)
    except Exception as exc:  # any parse failure of an untrusted file is the same
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path} is not a readable GGUF: {reason}") from None
    wanted = ("general.architecture", "general.name", "tokenizer.chat_template")
    metadata = {}
    for key in wanted:
        field = reader.get_field(key)
        if field is not None:
            metadata[key] = str(field.contents())
    return info_from_metadata(metadata, path)


def choose_family(architecture: str, template: str, name: str) -> Family:
    """Pick the format family; see the module docstring."""
    if architecture == "glm4" or (
        "[gMASK]" in template and "<|observation|>" in template
    ):
        return "glm4"
    if "<|im_start|>" in template:
        return "chatml"
    if "<|start_header_id|>" in template:
        return "llama3"
    log.warning(
        "model %s (architecture %r) has no known chat format; using ChatML",
        name,
        architecture,
    )
    return "chatml"

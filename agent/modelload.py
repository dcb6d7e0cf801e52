"""Loading the configured model for a front end: path, runtime and self-test.

The model is ``--model`` if given, else ``[model] path``, else the embedded
SmolLM2-135M-Instruct. Every load runs the tool-call self-test; a model that fails
it runs in analysis-only mode (it answers, it never emits broken calls).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from agent.runtime.llama import LlamaRuntime, embedded_model_path, self_test
from agent.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    name: str
    path: Path
    runtime: LlamaRuntime
    self_test_passed: bool
    self_test_detail: str
    embedded: bool


def load_model(settings: Settings, override: Path | None = None) -> LoadedModel:
    """Load and self-test the model; ModelError with one line if it cannot load."""
    path = override or settings.model.path
    embedded = path is None
    if path is None:
        path = embedded_model_path()
    runtime = LlamaRuntime(
        path,
        n_ctx=settings.model.context,
        n_threads=settings.model.threads,
        thinking_budget=settings.model.thinking_budget,
    )
    result = self_test(runtime)
    log.info("self-test of %s: %s", runtime.model_name, result.detail)
    return LoadedModel(
        name=runtime.model_name,
        path=path,
        runtime=runtime,
        self_test_passed=result.passed,
        self_test_detail=result.detail,
        embedded=embedded,
    )

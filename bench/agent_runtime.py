"""The model runtime against raw llama-cpp-python, on the embedded SmolLM2 GGUF.

One run prints two ratios, same model file, same thread count, same Llama instance:

1. decode speed: tokens/s of ``LlamaRuntime.decide`` generating an answer vs
   ``Llama.create_completion`` generating up to the same number of tokens from the
   same prompt tokens and sampling settings (goal >= 0.95). The prompt is evaluated
   before each timed run, so both measure generation, not prompt evaluation.
2. prefix reuse: time to first token of a second turn vs the first turn of a fresh
   session, with the agent's system prompt and tool schemas (goal <= 0.2).

Usage: ``python bench/agent_runtime.py [--tokens N] [--threads T] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from agent.runtime.base import ChatMessage, ToolSpec
from agent.runtime.llama import LlamaRuntime, embedded_model_path
from agent.toolset import schemas
from agent.toolset.texts import system_prompt, tool_texts

QUESTION = "Explain what a TLS 1.3 handshake does, step by step, in detail."
FOLLOW_UP = "And what changes when the key exchange is X25519MLKEM768?"


def agent_tools() -> list[ToolSpec]:
    """The agent's four tools with their real descriptions and schemas."""
    models = {
        "tls_check": schemas.TlsCheckArgs,
        "pq_check": schemas.PqCheckArgs,
        "nmap_scan": schemas.NmapScanArgs,
        "full_check": schemas.FullCheckArgs,
    }
    texts = tool_texts()
    return [
        ToolSpec(name, texts.description(name), model.model_json_schema())
        for name, model in models.items()
    ]


def ours_rate(
    runtime: LlamaRuntime, messages: list[ChatMessage], tools: list[ToolSpec]
) -> float:
    """Tokens per second of one decide() call (tools offered) on a warm prompt."""
    runtime.decide(messages, tools)  # evaluates the prompt; the timed call reuses it
    decision = runtime.decide(messages, tools)
    if decision.kind != "answer":
        print(f"note: the timed decision was a {decision.kind}, not an answer")
    return decision.completion_tokens / runtime.stats.total_s


def raw_rate(
    runtime: LlamaRuntime,
    messages: list[ChatMessage],
    tools: list[ToolSpec],
    tokens: int,
) -> float:
    """Tokens per second of raw create_completion on the same prompt tokens."""
    llm, sampling = runtime.llama, runtime.sampling
    prompt = runtime.render_tokens(messages, tools)
    settings = {
        "max_tokens": tokens,
        "temperature": sampling.temp,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "repeat_penalty": 1.0,
    }
    llm.create_completion(prompt, **{**settings, "max_tokens": 1})  # warm the prompt
    started = time.perf_counter()
    result = llm.create_completion(prompt, **settings)
    elapsed = time.perf_counter() - started
    return int(result["usage"]["completion_tokens"]) / elapsed  # type: ignore[index]


def decode_ratio(runtime: LlamaRuntime, tokens: int, rounds: int) -> float:
    messages, tools = [ChatMessage("user", QUESTION)], agent_tools()
    ours, raw = [], []
    for _ in range(rounds):
        ours.append(ours_rate(runtime, messages, tools))
        raw.append(raw_rate(runtime, messages, tools, tokens))
    ours_median, raw_median = statistics.median(ours), statistics.median(raw)
    print(f"decode: runtime {ours_median:.1f} tok/s, raw {raw_median:.1f} tok/s")
    return ours_median / raw_median


def first_token_ratio(runtime: LlamaRuntime) -> float:
    tools = agent_tools()
    history = [
        ChatMessage("system", system_prompt(["127.0.0.0/8", "::1", "localhost"])),
        ChatMessage("user", QUESTION),
    ]
    runtime.llama.reset()
    first = runtime.decide(history, tools)
    first_s, first_prompt = runtime.stats.first_token_s, runtime.stats.prompt_tokens
    history += [
        ChatMessage("assistant", first.text, tool_calls=first.calls),
        ChatMessage("user", FOLLOW_UP),
    ]
    runtime.decide(history, tools)
    second_s, reused = runtime.stats.first_token_s, runtime.stats.reused_tokens
    print(
        f"first token: turn 1 {first_s * 1000:.0f} ms ({first_prompt} prompt tokens), "
        f"turn 2 {second_s * 1000:.0f} ms ({reused} of "
        f"{runtime.stats.prompt_tokens} prompt tokens reused)"
    )
    return second_s / first_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    runtime = LlamaRuntime(
        embedded_model_path(),
        n_ctx=4096,
        n_threads=args.threads,
        seed=1,
        max_tokens=args.tokens,
    )
    print(f"model {runtime.model_name}, {args.threads} threads, {args.tokens} tokens")
    decode = decode_ratio(runtime, args.tokens, args.rounds)
    ttft = first_token_ratio(runtime)
    print(f"decode speed ratio runtime/raw: {decode:.3f} (goal >= 0.95)")
    print(f"second-turn / first-turn time to first token: {ttft:.3f} (goal <= 0.2)")
    runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a tiny random-weight GGUF of llama.cpp architecture ``glm4``.

The file carries what the real GLM-4-0414 / GLM-Z1-0414 GGUFs carry where it matters
to the runtime: the ``glm4`` architecture, a byte-level BPE vocabulary, GLM's ten
special tokens typed CONTROL and a GLM-0414-style chat template. The weights are
random, so the text is noise, but rendering, special tokens, stops and grammars run
through real llama.cpp exactly as they would on the real model (about 400 KB, loads
in milliseconds).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

GLM_SPECIALS = (
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
)
MERGES = ("Ġ t", "Ġ a", "i n", "e r", "o n", "Ġ s")

WIDTH = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
FEED_FORWARD = 128
CONTEXT = 4096

TEMPLATE = (
    "[gMASK]<sop>{% if tools %}<|system|>\n# tools\n{% for t in tools %}"
    "{{ t | tojson }}{% endfor %}{% endif %}{% for m in messages %}"
    "{% if m.role == 'tool' %}<|observation|>\n{{ m.content }}"
    "{% else %}<|{{ m.role }}|>\n{{ m.content }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
REASONING_TEMPLATE = TEMPLATE.replace(
    "<|assistant|>{% endif %}", "<|assistant|>\n<think>{% endif %}"
)


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    symbols = {b: chr(b) for b in printable}
    spare = 256
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(spare)
            spare += 1
    return [symbols[b] for b in range(256)]


def vocabulary() -> tuple[list[str], list[int]]:
    """Tokens and their types: bytes, merged pairs, then GLM's specials."""
    tokens = byte_symbols() + [merge.replace(" ", "") for merge in MERGES]
    types = [gguf.TokenType.NORMAL] * len(tokens)
    tokens += list(GLM_SPECIALS)
    types += [gguf.TokenType.CONTROL] * len(GLM_SPECIALS)
    return tokens, [int(t) for t in types]


def special_id(name: str) -> int:
    """The id the tiny vocabulary gives a GLM special token."""
    return 256 + len(MERGES) + GLM_SPECIALS.index(name)


def write_tiny_glm(path: Path, *, reasoning: bool = False, seed: int = 7) -> Path:
    """Write the tiny model to ``path``; ``reasoning`` makes it look like GLM-Z1."""
    writer = gguf.GGUFWriter(str(path), "glm4")
    _add_hyperparameters(writer, reasoning)
    _add_tokenizer(writer, reasoning)
    _add_tensors(writer, np.random.default_rng(seed))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_hyperparameters(writer: gguf.GGUFWriter, reasoning: bool) -> None:
    writer.add_name("tiny-GLM-Z1-0414" if reasoning else "tiny-GLM-4-0414")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(WIDTH // HEADS // 2)
    writer.add_rope_freq_base(10000.0)


def _add_tokenizer(writer: gguf.GGUFWriter, reasoning: bool) -> None:
    tokens, types = vocabulary()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("glm4")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(list(MERGES))
    end = special_id("<|endoftext|>")
    writer.add_bos_token_id(end)
    writer.add_eos_token_id(end)
    writer.add_unk_token_id(end)
    writer.add_pad_token_id(end)
    writer.add_eot_token_id(special_id("<|user|>"))
    writer.add_chat_template(REASONING_TEMPLATE if reasoning else TEMPLATE)


def _add_tensors(writer: gguf.GGUFWriter, rng: np.random.Generator) -> None:
    n_vocab = len(vocabulary()[0])
    kv_width = WIDTH // HEADS * KV_HEADS

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    def ones() -> np.ndarray:
        return np.ones(WIDTH, dtype=np.float32)

    writer.add_tensor("token_embd.weight", weight(n_vocab, WIDTH))
    writer.add_tensor("output_norm.weight", ones())
    for i in range(LAYERS):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones())
        writer.add_tensor(f"{block}.attn_q.weight", weight(WIDTH, WIDTH))
        writer.add_tensor(f"{block}.attn_k.weight", weight(kv_width, WIDTH))
        writer.add_tensor(f"{block}.attn_v.weight", weight(kv_width, WIDTH))
        writer.add_tensor(f"{block}.attn_output.weight", weight(WIDTH, WIDTH))
        writer.add_tensor(f"{block}.post_attention_norm.weight", ones())
        writer.add_tensor(f"{block}.ffn_norm.weight", ones())
        writer.add_tensor(f"{block}.ffn_up.weight", weight(2 * FEED_FORWARD, WIDTH))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(WIDTH, FEED_FORWARD))
        writer.add_tensor(f"{block}.post_ffw_norm.weight", ones())

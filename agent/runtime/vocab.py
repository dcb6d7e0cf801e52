"""The model's special tokens and the safe tokenization of a rendered prompt.

Text parts are tokenized with special-token parsing *off*: ``<|user|>`` typed inside a
question or planted in a certificate becomes ordinary characters. Only the format's
:class:`Special` parts become control tokens, each checked to be exactly one id.
"""

from __future__ import annotations

from functools import cache

import llama_cpp
from llama_cpp import Llama

from agent.runtime.errors import ModelError
from agent.runtime.formats import ChatFormat, Prompt, Special


class Vocabulary:
    """Token ids that matter to one model in one format."""

    def __init__(self, llm: Llama, chat_format: ChatFormat) -> None:
        self._llm = llm
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        ids = range(llm.n_vocab())
        self.eog = frozenset(i for i in ids if llama_cpp.llama_vocab_is_eog(vocab, i))
        self.control = frozenset(
            i for i in ids if llama_cpp.llama_vocab_get_attr(vocab, i) & control
        )
        named = (self._lookup(name) for name in chat_format.stop_specials)
        self.stops = self.eog | self.control | {i for i in named if i is not None}
        self.masked = sorted(self.control - self.eog)
        """Control tokens kept out of grammar-constrained output."""
        self._special = cache(self._special_id)

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a rendered prompt (text parts never yield control tokens)."""
        tokens: list[int] = []
        for part in prompt:
            if isinstance(part, Special):
                tokens.append(self._special(part.text))
            elif part:
                tokens += self._llm.tokenize(
                    part.encode(), add_bos=False, special=False
                )
        return tokens

    def text(self, tokens: list[int], *, special: bool = False) -> str:
        """Decode ids to text (specials in text form when ``special``)."""
        raw = self._llm.detokenize(tokens, special=special)
        return raw.decode("utf-8", "replace")

    def _lookup(self, text: str) -> int | None:
        ids = self._llm.tokenize(text.encode(), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 else None

    def _special_id(self, text: str) -> int:
        token = self._lookup(text)
        if token is None:
            raise ModelError(f"the model's vocabulary has no special token {text}")
        return token

"""Making certificate text safe to show.

Certificate fields are written by whoever made the certificate. They may hold
terminal escapes, line breaks, bidirectional overrides or text aimed at a language
model. They stay data: control and format characters are dropped (line breaks and
tabs become a space) so the words remain readable but can steer nothing.
"""

from __future__ import annotations

import unicodedata

_WHITESPACE_CONTROLS = frozenset("\t\n\r\x0b\x0c\x85\u2028\u2029")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MAX_FIELD_CHARS = 2048


def clean_text(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """Return ``text`` without control characters, at most ``limit`` characters."""
    kept: list[str] = []
    for char in text:
        if char in _WHITESPACE_CONTROLS:
            kept.append(" ")
        elif unicodedata.category(char) not in _DROPPED_CATEGORIES:
            kept.append(char)
    cleaned = " ".join("".join(kept).split())
    if len(cleaned) > limit:
        return cleaned[: limit - 1] + "…"
    return cleaned

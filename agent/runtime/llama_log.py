"""Route llama.cpp's own log lines into Python logging instead of stderr.

llama.cpp writes through one process-wide callback. Ours forwards each complete line
to the ``llama_cpp`` logger at DEBUG (WARNING for its errors) and keeps the last
error lines, so a failed load can say why in one line.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque

import llama_cpp

log = logging.getLogger("llama_cpp")

_ERROR_LEVEL = 3
_CONTINUE_LEVEL = 5
_state = threading.local()
_errors: deque[str] = deque(maxlen=4)
_lock = threading.Lock()
_installed: list[object] = []


def install() -> None:
    """Install the callback once per process (idempotent)."""
    with _lock:
        if _installed:
            return
        callback = llama_cpp.llama_log_callback(_on_log)
        _installed.append(callback)  # keep a reference: C holds only the pointer
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def last_error() -> str:
    """The most recent error line llama.cpp logged, or ''."""
    return _errors[-1] if _errors else ""


def clear_errors() -> None:
    _errors.clear()


def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    try:
        if level != _CONTINUE_LEVEL:
            _state.level = level
        line = getattr(_state, "pending", "") + text.decode("utf-8", "replace")
        *complete, _state.pending = line.split("\n")
        for entry in filter(None, (c.strip() for c in complete)):
            _emit(getattr(_state, "level", 0), entry)
    except Exception:  # an exception must never cross into C
        return


def _emit(level: int, line: str) -> None:
    if level == _ERROR_LEVEL:
        _errors.append(line)
        log.warning("%s", line)
    else:
        log.debug("%s", line)

"""Errors of the model runtime, part of netwarden's one exception tree.

NetwardenError (tools.errors)
└── ModelError      a GGUF that is missing, corrupt or unsupported, or a model
                    that cannot run; the message is one line a person can act on
"""

from __future__ import annotations

from tools.errors import NetwardenError


class ModelError(NetwardenError):
    """The model could not be found, loaded or run; see the message."""

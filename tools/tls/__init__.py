"""TLS probes written by hand: ClientHellos, first replies, post-quantum groups.

``groups`` is the registry of named groups (IANA codes, names, kinds, share sizes);
``wire`` builds ClientHellos and parses the first server reply (``WireError``);
``probe`` runs ``probe_groups`` and ``probe_versions`` over asyncio (``NotTlsError``).
"""

from tools.tls.probe import NotTlsError, probe_groups, probe_versions
from tools.tls.wire import WireError

__all__ = ["NotTlsError", "WireError", "probe_groups", "probe_versions"]

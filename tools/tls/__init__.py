"""TLS probes written by hand: ClientHellos, first replies, post-quantum groups.

    groups   the registry of named groups (IANA codes, names, kinds, share sizes)
    wire     building ClientHellos and parsing the first server reply; WireError
    probe    probe_groups / probe_versions over asyncio; NotTlsError
"""

from tools.tls.probe import NotTlsError, probe_groups, probe_versions
from tools.tls.wire import WireError

__all__ = ["NotTlsError", "WireError", "probe_groups", "probe_versions"]

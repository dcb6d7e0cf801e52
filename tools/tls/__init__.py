"""TLS probes written by hand: ClientHellos, first replies, post-quantum groups."""

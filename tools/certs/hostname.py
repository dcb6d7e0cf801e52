"""Does a certificate cover a host? (RFC 6125 / RFC 9525 rules.)

* An IP address matches only an iPAddress subjectAltName, never a DNS name.
* A DNS name matches a dNSName; the only wildcard accepted is a whole left-most
  label (``*.example.com``), which stands for exactly one label and needs at
  least two labels after it.
* Names are compared as IDNA A-labels, case-insensitively, without a final dot.
* The subject CN is consulted only when the certificate has no subjectAltName
  extension at all.
"""

from __future__ import annotations

import ipaddress
import logging

from cryptography import x509
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """True when ``cert`` is valid for ``host`` (a DNS name or an IP literal)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    sans = _subject_alt_names(cert)
    if address is not None:
        return sans is not None and address in sans.get_values_for_type(x509.IPAddress)
    name = to_a_label(host)
    if name is None:
        return False
    if sans is None:
        return any(_dns_matches(cn, name) for cn in _common_names(cert))
    return any(
        _dns_matches(pattern, name)
        for pattern in sans.get_values_for_type(x509.DNSName)
    )


def to_a_label(name: str) -> str | None:
    """``name`` in lower-case ASCII (IDNA A-labels) without a final dot, or None."""
    name = name.strip().rstrip(".")
    if not name:
        return None
    try:
        ascii_name = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        log.debug("host name %r is not valid IDNA", name)
        return None
    return ascii_name.lower()


def _dns_matches(pattern: str, name: str) -> bool:
    pattern_name = to_a_label(pattern)
    if pattern_name is None:
        return False
    if not pattern_name.startswith("*."):
        return "*" not in pattern_name and pattern_name == name
    suffix = pattern_name[2:]
    if "*" in suffix or suffix.count(".") < 1:
        return False
    first, dot, rest = name.partition(".")
    return bool(first) and dot == "." and rest == suffix


def _subject_alt_names(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:  # present but malformed: match nothing, no CN
        log.debug("unparsable extensions: %s", exc)
        return x509.SubjectAlternativeName([])
    return extension.value


def _common_names(cert: x509.Certificate) -> list[str]:
    try:
        attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return []
    return [a.value for a in attributes if isinstance(a.value, str)]

"""Certificate inspection (``netwarden tls``) and post-quantum classification.

Modules: :mod:`~tools.certs.inspection` connects and reads the chain,
:mod:`~tools.certs.describe` turns a certificate into a ``CertificateInfo``,
:mod:`~tools.certs.classify` names algorithms by OID and judges them,
:mod:`~tools.certs.hostname` matches host names (RFC 6125) and
:mod:`~tools.certs.assess` turns all of it into findings.
"""

from tools.certs.assess import DEFAULT_THRESHOLDS, Thresholds, certificate_findings
from tools.certs.classify import classify_certificate
from tools.certs.describe import describe_certificate
from tools.certs.hostname import hostname_matches
from tools.certs.inspection import CertInspection, inspect_tls

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CertInspection",
    "Thresholds",
    "certificate_findings",
    "classify_certificate",
    "describe_certificate",
    "hostname_matches",
    "inspect_tls",
]

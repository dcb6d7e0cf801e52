"""Throwaway certificate authorities and certificates for the practice lab.

Nothing here is meant to be trusted outside a test: keys live in memory and in the
lab's temporary directory, and every certificate is made fresh for one lab run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from OpenSSL import crypto

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | mldsa.MLDSA65PrivateKey
"""The private key types the lab signs with."""

_DAY = dt.timedelta(days=1)


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key: fast to make, the lab's default."""
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key, for endpoints whose ciphers need one."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def mldsa_key() -> mldsa.MLDSA65PrivateKey:
    """A fresh ML-DSA-65 key (FIPS 204)."""
    return mldsa.MLDSA65PrivateKey.generate()


def default_hash(key: SigningKey) -> hashes.SHA256 | None:
    """The digest to sign with: SHA-256, or none for ML-DSA (it hashes itself)."""
    return None if isinstance(key, mldsa.MLDSA65PrivateKey) else hashes.SHA256()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netwarden lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(dns: Sequence[str], ips: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return x509.SubjectAlternativeName(names)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: SigningKey, days: tuple[int, int]
) -> x509.CertificateBuilder:
    """A builder with subject, issuer, key and validity ``days`` around now."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + days[0] * _DAY)
        .not_valid_after(now + days[1] * _DAY)
    )


def _ca_extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True
    ).add_extension(usage, critical=True)


class CertificateAuthority:
    """A root (or intermediate) CA that issues lab certificates."""

    def __init__(self, key: SigningKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def root(cls, common_name: str, key: SigningKey) -> CertificateAuthority:
        """A self-signed root CA valid from yesterday for ten years."""
        name = _name(common_name)
        builder = _ca_extensions(_builder(name, name, key, (-1, 3650)))
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(ski, critical=False)
        return cls(key, builder.sign(key, default_hash(key)))

    def intermediate(self, common_name: str, key: SigningKey) -> CertificateAuthority:
        """A CA certificate for ``key`` issued by this CA."""
        builder = _builder(_name(common_name), self.cert.subject, key, (-1, 1825))
        cert = self._sign(_ca_extensions(builder), key)
        return CertificateAuthority(key, cert)

    def issue(
        self,
        key: SigningKey,
        *,
        dns: Sequence[str] = ("localhost",),
        ips: Sequence[str] = ("127.0.0.1",),
        days: tuple[int, int] = (-1, 90),
    ) -> x509.Certificate:
        """A server certificate for ``key``; ``days`` is validity around today."""
        common_name = dns[0] if dns else ips[0]
        builder = _builder(_name(common_name), self.cert.subject, key, days)
        builder = builder.add_extension(_san(dns, ips), critical=False)
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        return self._sign(builder, key)

    def _sign(
        self, builder: x509.CertificateBuilder, key: SigningKey
    ) -> x509.Certificate:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        builder = builder.add_extension(ski, critical=False)
        builder = builder.add_extension(aki, critical=False)
        return builder.sign(self.key, default_hash(self.key))

    def resign_sha1(self, cert: x509.Certificate) -> x509.Certificate:
        """``cert`` signed again by this CA over SHA-1, which cryptography refuses.

        OpenSSL itself still signs with SHA-1, so this goes through pyOpenSSL.
        """
        if isinstance(self.key, mldsa.MLDSA65PrivateKey):
            raise ValueError("an ML-DSA key cannot sign over SHA-1")
        legacy = crypto.X509.from_cryptography(cert)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy.sign(crypto.PKey.from_cryptography_key(self.key), "sha1")
        return legacy.to_cryptography()

    def ocsp_good(self, cert: x509.Certificate) -> bytes:
        """A DER OCSP response, signed by this CA, saying ``cert`` is good."""
        now = dt.datetime.now(dt.UTC)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=self.cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - dt.timedelta(minutes=5),
            next_update=now + _DAY,
            revocation_time=None,
            revocation_reason=None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.cert)
        response = builder.sign(self.key, default_hash(self.key))
        return response.public_bytes(serialization.Encoding.DER)


def self_signed(
    key: SigningKey, dns: Sequence[str] = ("localhost",), ips: Sequence[str] = ()
) -> x509.Certificate:
    """A self-signed leaf certificate (not a CA) for ``dns`` and ``ips``."""
    name = _name(dns[0] if dns else ips[0])
    builder = _builder(name, name, key, (-1, 90))
    builder = builder.add_extension(_san(dns, ips), critical=False)
    return builder.sign(key, default_hash(key))


def write_pem(path: Path, certs: Sequence[x509.Certificate]) -> Path:
    """Write ``certs`` as one PEM bundle, in order, and return ``path``."""
    path.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    )
    return path


def write_key(path: Path, key: SigningKey) -> Path:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by its owner only."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return path

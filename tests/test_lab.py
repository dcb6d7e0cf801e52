"""The practice lab: every endpoint is up and behaves as its description says."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.bindings.openssl.binding import Binding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from OpenSSL import SSL

from tools.errors import UsageError
from tools.lab import ENDPOINT_NAMES, Lab, LabEndpoint

ML_DSA_65 = "2.16.840.1.101.3.4.3.18"


def _connect(
    endpoint: LabEndpoint,
    *,
    ca_file: Path | None = None,
    groups: str | None = None,
    version: int | None = None,
    ocsp_seen: list[bytes] | None = None,
) -> SSL.Connection:
    """A finished pyOpenSSL (OpenSSL 4) client handshake with ``endpoint``."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    if version is not None:
        context.set_min_proto_version(version)
        context.set_max_proto_version(version)
    if groups is not None:
        assert Binding.lib.SSL_CTX_set1_curves_list(context._context, groups.encode())
    if ca_file is not None:
        context.load_verify_locations(str(ca_file))
        context.set_verify(SSL.VERIFY_PEER)
    if ocsp_seen is not None:
        context.set_ocsp_client_callback(_recorder(ocsp_seen))
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=5)
    sock.settimeout(None)  # pyOpenSSL wants a blocking socket; the kernel times out
    timeout = struct.pack("ll", 5, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
    conn = SSL.Connection(context, sock)
    conn.set_tlsext_host_name(endpoint.server_name.encode())
    if ocsp_seen is not None:
        conn.request_ocsp()
    conn.set_connect_state()
    conn.do_handshake()
    return conn


def _recorder(seen: list[bytes]) -> Callable[[SSL.Connection, bytes, object], bool]:
    def record(conn: SSL.Connection, data: bytes, _: object) -> bool:
        seen.append(data)
        return True

    return record


def _group(conn: SSL.Connection) -> str:
    name = Binding.lib.SSL_get0_group_name(conn._ssl)
    return Binding.ffi.string(name).decode() if name else ""


def _leaf(conn: SSL.Connection) -> x509.Certificate:
    cert = conn.get_peer_certificate(as_cryptography=True)
    assert cert is not None
    return cert


def _ssh_kex(endpoint: LabEndpoint) -> tuple[bytes, list[str]]:
    """The banner and the key exchange names an SSH endpoint offers."""
    with socket.create_connection((endpoint.host, endpoint.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        banner = stream.readline()
        sock.sendall(b"SSH-2.0-netwarden_test\r\n")
        length, padding = struct.unpack(">IB", stream.read(5))
        payload = stream.read(length - 1)[: length - 1 - padding]
    assert payload[0] == 20  # SSH_MSG_KEXINIT
    (size,) = struct.unpack(">I", payload[17:21])
    return banner, payload[21 : 21 + size].decode().split(",")


@pytest.mark.parametrize("name", ENDPOINT_NAMES)
def test_every_endpoint_accepts_tcp(lab: Lab, name: str) -> None:
    endpoint = lab.endpoints[name]
    assert endpoint.host == "127.0.0.1"
    with socket.create_connection((endpoint.host, endpoint.port), timeout=3):
        pass


def test_stdlib_client_trusts_classical_tls_with_lab_ca(lab: Lab) -> None:
    endpoint = lab.endpoints["classical-tls"]
    context = ssl.create_default_context(cafile=str(lab.ca_file))
    with (
        socket.create_connection((endpoint.host, endpoint.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=endpoint.server_name) as tls,
    ):
        assert tls.version() == "TLSv1.3"
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.0 200 OK")


def test_pq_tls_negotiates_x25519mlkem768_by_default(lab: Lab) -> None:
    conn = _connect(lab.endpoints["pq-tls"], ca_file=lab.ca_file)
    assert _group(conn) == "X25519MLKEM768"
    assert conn.get_protocol_version_name() == "TLSv1.3"


@pytest.mark.parametrize("group", ["SecP256r1MLKEM768", "X25519", "secp384r1"])
def test_pq_tls_accepts_other_default_groups(lab: Lab, group: str) -> None:
    conn = _connect(lab.endpoints["pq-tls"], groups=group)
    assert _group(conn).lower() == group.lower()


def test_pq_tls_speaks_tls12_but_not_tls11(lab: Lab) -> None:
    conn = _connect(lab.endpoints["pq-tls"], version=SSL.TLS1_2_VERSION)
    assert conn.get_protocol_version_name() == "TLSv1.2"
    with pytest.raises(SSL.Error):
        _connect(lab.endpoints["pq-tls"], version=SSL.TLS1_1_VERSION)


def test_classical_tls_refuses_post_quantum_groups(lab: Lab) -> None:
    conn = _connect(lab.endpoints["classical-tls"], ca_file=lab.ca_file)
    assert _group(conn) == "x25519"
    with pytest.raises(SSL.Error):
        _connect(lab.endpoints["classical-tls"], groups="X25519MLKEM768")


def test_pq_tls_staples_a_good_ocsp_response_from_the_lab_ca(lab: Lab) -> None:
    seen: list[bytes] = []
    conn = _connect(lab.endpoints["pq-tls"], ocsp_seen=seen)
    response = ocsp.load_der_ocsp_response(seen[0])
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == _leaf(conn).serial_number


def test_set_groups_changes_what_new_connections_get() -> None:
    with Lab(["pq-tls"]) as own:
        endpoint = own.endpoints["pq-tls"]
        own.set_groups("pq-tls", "X25519")
        assert _group(_connect(endpoint)) == "x25519"
        with pytest.raises(SSL.Error):
            _connect(endpoint, groups="X25519MLKEM768")
        own.set_groups("pq-tls", "X25519MLKEM768:X25519")
        assert _group(_connect(endpoint)) == "X25519MLKEM768"


def test_set_groups_rejects_bad_lists_and_stdlib_endpoints(lab: Lab) -> None:
    with pytest.raises(UsageError, match="not a running pyOpenSSL"):
        lab.set_groups("classical-tls", "X25519")
    with pytest.raises(UsageError, match="rejected"):
        lab.set_groups("pq-tls", "NoSuchGroup")
    assert _group(_connect(lab.endpoints["pq-tls"])) == "X25519MLKEM768"


def test_tls12_only_refuses_tls13(lab: Lab) -> None:
    endpoint = lab.endpoints["tls12-only"]
    conn = _connect(endpoint, ca_file=lab.ca_file)
    assert conn.get_protocol_version_name() == "TLSv1.2"
    with pytest.raises(SSL.Error):
        _connect(endpoint, version=SSL.TLS1_3_VERSION)


@pytest.mark.parametrize(
    ("version", "name"), [(SSL.TLS1_VERSION, "TLSv1"), (SSL.TLS1_1_VERSION, "TLSv1.1")]
)
def test_legacy_tls_speaks_old_versions(lab: Lab, version: int, name: str) -> None:
    conn = _connect(lab.endpoints["legacy-tls"], ca_file=lab.ca_file, version=version)
    assert conn.get_protocol_version_name() == name
    assert isinstance(_leaf(conn).public_key(), rsa.RSAPublicKey)
    with pytest.raises(SSL.Error):
        _connect(lab.endpoints["classical-tls"], version=version)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("expired", "certificate has expired"),
        ("self-signed", "self-signed certificate"),
        ("untrusted-chain", "unable to get local issuer certificate"),
    ],
)
def test_broken_certificates_fail_verification(
    lab: Lab, name: str, reason: str
) -> None:
    endpoint = lab.endpoints[name]
    context = ssl.create_default_context(cafile=str(lab.ca_file))
    with (
        socket.create_connection((endpoint.host, endpoint.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match=reason),
    ):
        context.wrap_socket(raw, server_hostname=endpoint.server_name)


def test_wrong_host_certificate_names_another_host(lab: Lab) -> None:
    conn = _connect(lab.endpoints["wrong-host"], ca_file=lab.ca_file)
    sans = _leaf(conn).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.DNSName) == ["wrong.example"]
    assert sans.value.get_values_for_type(x509.IPAddress) == []


def test_untrusted_chain_serves_leaf_and_intermediate(lab: Lab) -> None:
    conn = _connect(lab.endpoints["untrusted-chain"])
    chain = conn.get_peer_cert_chain(as_cryptography=True)
    assert chain is not None
    assert len(chain) == 2
    assert chain[0].issuer == chain[1].subject != chain[1].issuer


def test_mldsa_endpoint_is_ml_dsa_and_verifies_with_the_lab_bundle(lab: Lab) -> None:
    conn = _connect(lab.endpoints["mldsa"], ca_file=lab.ca_file)
    leaf = _leaf(conn)
    assert leaf.signature_algorithm_oid.dotted_string == ML_DSA_65
    assert leaf.public_key_algorithm_oid.dotted_string == ML_DSA_65
    assert _group(conn) == "X25519MLKEM768"


def test_weak_rsa_is_rsa_1024_signed_with_sha1(lab: Lab) -> None:
    leaf = _leaf(_connect(lab.endpoints["weak-rsa"], ca_file=lab.ca_file))
    key = leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 1024
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha1"


def test_openssh_offers_sntrup_but_no_mlkem(lab: Lab) -> None:
    banner, kex = _ssh_kex(lab.endpoints["ssh-openssh"])
    assert banner.startswith(b"SSH-2.0-OpenSSH_")
    assert kex[0].startswith("sntrup761x25519-sha512")
    assert not any(name.startswith("mlkem") for name in kex)


def test_asyncssh_offers_mlkem_first(lab: Lab) -> None:
    banner, kex = _ssh_kex(lab.endpoints["ssh-asyncssh"])
    assert banner.startswith(b"SSH-2.0-AsyncSSH_")
    assert kex[0] == "mlkem768x25519-sha256"


@pytest.mark.parametrize("name", ["pq-tls", "classical-tls"])
def test_servers_survive_clients_that_hang_up(lab: Lab, name: str) -> None:
    endpoint = lab.endpoints[name]
    for junk in (b"\x16\x03\x01\x00\xff\x01", b"GET / HTTP/1.0\r\n\r\n", b""):
        with socket.create_connection((endpoint.host, endpoint.port), timeout=3) as s:
            s.sendall(junk)
    conn = _connect(endpoint, ca_file=lab.ca_file)
    assert conn.get_protocol_version_name() == "TLSv1.3"


def test_many_concurrent_handshakes(lab: Lab) -> None:
    errors: list[Exception] = []

    def one() -> None:
        try:
            _connect(lab.endpoints["pq-tls"], ca_file=lab.ca_file).shutdown()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []


def test_base_port_and_clean_stop(unused_tcp_port: int) -> None:
    before = set(threading.enumerate())
    lab = Lab(["classical-tls", "tls12-only"], base_port=unused_tcp_port).start()
    workdir = lab.ca_file.parent
    assert lab.endpoints["classical-tls"].port == unused_tcp_port + 1
    assert lab.endpoints["tls12-only"].port == unused_tcp_port + 2
    lab.stop()
    lab.stop()
    assert not workdir.exists()
    assert lab.endpoints == {}
    assert set(threading.enumerate()) <= before


def test_stopped_servers_refuse_connections() -> None:
    lab = Lab(["pq-tls", "ssh-openssh", "ssh-asyncssh"]).start()
    endpoints = list(lab.endpoints.values())
    hanging = socket.create_connection(("127.0.0.1", endpoints[0].port), timeout=3)
    hanging.sendall(b"\x16\x03\x01")  # half a ClientHello, then silence
    lab.stop()
    hanging.close()
    for endpoint in endpoints:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((endpoint.host, endpoint.port), timeout=3)


def test_unknown_endpoint_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no-such"):
        Lab(["pq-tls", "no-such"])

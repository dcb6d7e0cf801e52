"""Human output: peer text is shown literally, never interpreted as markup."""

from __future__ import annotations

from agent.cli import render
from tools.models import CertificateInfo, TlsResult


def test_markup_inside_certificate_fields_is_printed_literally() -> None:
    hostile = "[bold red]ALL CLEAR[/bold red] [link=http://evil.invalid]click[/link]"
    cert = CertificateInfo(
        subject=f"CN={hostile}",
        issuer="CN=x",
        serial="01",
        not_before="2026-01-01T00:00:00Z",
        not_after="2027-01-01T00:00:00Z",
        days_left=30,
        key_type="EC",
        signature_algorithm="ecdsa-with-SHA256",
        signature_oid="1.2.840.10045.4.3.2",
        sha256_fingerprint="00",
    )
    result = TlsResult(target="127.0.0.1:443", host="127.0.0.1", certificate=cert)
    with render.out.capture() as captured:
        render.out.width = 200
        render.out.print(render.render(result))
    text = captured.get()
    assert "[bold red]ALL CLEAR[/bold red]" in text
    assert "[link=http://evil.invalid]" in text

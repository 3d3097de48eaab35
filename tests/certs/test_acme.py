"""ACME issuance, renewal, revocation and renewal information against a real Pebble.

Expectations come from the test's own parsing (cryptography, the openssl CLI), from Pebble's management
interface (its root and intermediate, its record of revocations) and from RFC 9773's worked example.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from portcullis.certs.acme_client import (
    AcmeAccount,
    AcmeError,
    Http01Responder,
    Issued,
    ari_cert_id,
    issue,
    renewal_window,
    revoke,
)
from tests.certs.pebble import Pebble, start_pebble, stop
from tests.certs.pebble import pebble_server as pebble_server  # the fixture

DOMAINS = ["www.aurora.test", "api.aurora.test"]
DEAF_TO = "lost.aurora.test"


class _DeafTo(Http01Responder):
    """Answers challenges for every name but one, like a web server the name no longer points at."""

    def key_authorization(self, host: str, token: str) -> str | None:
        return None if host == DEAF_TO else super().key_authorization(host, token)


@pytest.fixture(name="responder", scope="module")
def responder_fixture(pebble: Pebble) -> Iterator[Http01Responder]:
    with _DeafTo("127.0.0.1", pebble.http_port) as responder:
        yield responder


@pytest.fixture(name="account", scope="module")
def account_fixture() -> AcmeAccount:
    return AcmeAccount.generate()


def _issue(pebble: Pebble, account: AcmeAccount, responder: Http01Responder, domains: list[str], **kw: Any) -> Issued:
    return issue(
        pebble.directory_url, account=account, domains=domains, responder=responder, ca_bundle=pebble.ca_bundle, **kw
    )


def _spki(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _check_issued(pebble: Pebble, issued: Issued, domains: list[str]) -> x509.Certificate:
    """Everything a caller relies on, checked from the bytes returned; returns the leaf."""
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    leaf, intermediates = chain[0], chain[1:]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(domains)

    assert issued.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    assert _spki(key.public_key()) == _spki(leaf.public_key())

    root = x509.load_pem_x509_certificate(pebble.root_pem())
    assert intermediates == [x509.load_pem_x509_certificate(pebble.intermediate_pem())]
    for domain in domains:
        verifier = (
            PolicyBuilder().store(Store([root])).time(datetime.now(UTC)).build_server_verifier(x509.DNSName(domain))
        )
        verified = verifier.verify(leaf, intermediates)
        assert verified[-1] == root

    assert issued.not_after == leaf.not_valid_after_utc
    assert issued.serial == leaf.serial_number
    assert issued.order_url.startswith(pebble.directory_url.removesuffix("/dir") + "/")
    assert "PRIVATE KEY" not in repr(issued)
    return leaf


def test_issue_for_two_domains_chains_to_pebbles_root(
    pebble: Pebble, account: AcmeAccount, responder: Http01Responder
) -> None:
    issued = _issue(pebble, account, responder, DOMAINS, contact=["mailto:pki@aurora.test"])

    _check_issued(pebble, issued, DOMAINS)
    assert isinstance(serialization.load_pem_private_key(issued.key_pem, None), ec.EllipticCurvePrivateKey)
    assert account.kid is not None
    assert account.kid.startswith(pebble.directory_url.removesuffix("/dir") + "/")
    assert responder.tokens == {}  # challenges are withdrawn once answered


def test_renewal_makes_a_new_key_and_serial_with_a_restored_account(
    pebble: Pebble, account: AcmeAccount, responder: Http01Responder
) -> None:
    first = _issue(pebble, account, responder, DOMAINS)
    assert account.kid is not None
    # What the caller seals and later unseals: the account key as PEM and the account URL.
    restored = AcmeAccount.from_pem(account.key_pem(), account.kid)
    first_der = x509.load_pem_x509_certificate(first.chain_pem).public_bytes(serialization.Encoding.DER)
    second = _issue(pebble, restored, responder, DOMAINS, replaces=ari_cert_id(first_der))

    _check_issued(pebble, second, DOMAINS)
    assert restored.kid == account.kid  # no second registration
    assert first.key_pem != second.key_pem
    first_key = serialization.load_pem_private_key(first.key_pem, None)
    second_key = serialization.load_pem_private_key(second.key_pem, None)
    assert _spki(first_key.public_key()) != _spki(second_key.public_key())
    assert first.serial != second.serial


@pytest.mark.parametrize(("key_type", "bits"), [("rsa-2048", 2048), ("rsa-3072", 3072)])
def test_rsa_key_types(
    pebble: Pebble, account: AcmeAccount, responder: Http01Responder, key_type: str, bits: int
) -> None:
    issued = _issue(pebble, account, responder, ["rsa.aurora.test"], key_type=key_type)

    leaf = _check_issued(pebble, issued, ["rsa.aurora.test"])
    key = serialization.load_pem_private_key(issued.key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == bits
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)


def test_rsa_account_key(pebble: Pebble, responder: Http01Responder) -> None:
    account = AcmeAccount(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    issued = _issue(pebble, account, responder, ["rsa-account.aurora.test"])
    _check_issued(pebble, issued, ["rsa-account.aurora.test"])


def test_unserved_challenge_names_the_domain(pebble: Pebble, account: AcmeAccount, responder: Http01Responder) -> None:
    with pytest.raises(AcmeError) as caught:
        _issue(pebble, account, responder, ["kept.aurora.test", DEAF_TO])

    message = str(caught.value)
    assert re.search(r"authorization for lost\.aurora\.test failed: urn:ietf:params:acme:error:\w+: .*404", message)
    assert "kept.aurora.test failed" not in message
    assert "PRIVATE KEY" not in message
    assert responder.tokens == {}


def test_unreachable_domain_reports_the_connection_problem(
    pebble: Pebble, account: AcmeAccount, responder: Http01Responder
) -> None:
    pebble.add_a("gone.aurora.test", "127.0.0.2")  # nothing listens there

    with pytest.raises(AcmeError, match=r"authorization for gone\.aurora\.test failed: .*error:connection: "):
        _issue(pebble, account, responder, ["gone.aurora.test"])


def test_revoke(pebble: Pebble, account: AcmeAccount, responder: Http01Responder) -> None:
    issued = _issue(pebble, account, responder, ["revoked.aurora.test"])
    der = x509.load_pem_x509_certificate(issued.chain_pem).public_bytes(serialization.Encoding.DER)
    assert pebble.cert_status(issued.serial)["Status"] == "Valid"

    revoke(pebble.directory_url, account=account, cert_der=der, ca_bundle=pebble.ca_bundle, reason=4)

    status = pebble.cert_status(issued.serial)
    assert (status["Status"], status["Reason"]) == ("Revoked", 4)
    with pytest.raises(
        AcmeError, match=rf"revocation of certificate serial {issued.serial:x} failed: .*alreadyRevoked"
    ):
        revoke(pebble.directory_url, account=account, cert_der=der, ca_bundle=pebble.ca_bundle)


def test_pebble_listener_is_verified_against_the_given_bundle(pebble: Pebble, account: AcmeAccount) -> None:
    # The system store does not know the fixture's throwaway CA, so None must fail, not skip checking.
    expected = r"fetching the ACME directory https://127\.0\.0\.1:\d+/dir failed: SSLError"
    with Http01Responder("127.0.0.1", 0) as responder, pytest.raises(AcmeError, match=expected):
        issue(pebble.directory_url, account=account, domains=["x.aurora.test"], responder=responder, ca_bundle=None)


def test_a_url_that_is_no_acme_server(account: AcmeAccount) -> None:
    with Http01Responder("127.0.0.1", 0) as responder:
        plain = responder.port  # a plain web server: it answers 404, not an ACME directory
        with pytest.raises(AcmeError, match=rf"fetching the ACME directory http://127\.0\.0\.1:{plain}/dir failed"):
            issue(
                f"http://127.0.0.1:{plain}/dir",
                account=account,
                domains=["x.test"],
                responder=responder,
                ca_bundle=None,
            )


def test_unknown_key_type_is_refused_before_any_request(account: AcmeAccount) -> None:
    with pytest.raises(ValueError, match="unknown key type 'dsa-1024'"):
        issue("https://127.0.0.1:1/dir", account=account, domains=["x.test"], key_type="dsa-1024",
              responder=Http01Responder(), ca_bundle=None)  # fmt: skip


def test_bad_nonces_are_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Pebble rejecting 40% of good nonces: issuance still succeeds, and rejections did happen."""
    caplog.set_level(logging.DEBUG)
    server = start_pebble(tmp_path / "pebble", nonce_reject=40)
    try:
        with Http01Responder("127.0.0.1", server.http_port) as responder:
            issued = _issue(server, AcmeAccount.generate(), responder, DOMAINS)
        _check_issued(server, issued, DOMAINS)
    finally:
        for process in reversed(server.processes):
            stop(process)
    retries = [r for r in caplog.records if r.name == "acme.client" and "badNonce" in r.getMessage()]
    assert retries, "Pebble rejected no nonce, so this test proved nothing"


def test_responder_serves_tokens_and_stops() -> None:
    with Http01Responder("127.0.0.1", 0) as responder:
        responder.serve("tok-1", "tok-1.thumbprint")
        base = f"http://127.0.0.1:{responder.port}/.well-known/acme-challenge/"
        served = httpx.get(base + "tok-1", headers={"Host": "www.aurora.test:80"}, timeout=5)
        assert (served.status_code, served.content) == (200, b"tok-1.thumbprint")
        assert httpx.get(base + "tok-2", timeout=5).status_code == 404
        assert httpx.get(base.removesuffix("acme-challenge/") + "tok-1", timeout=5).status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "tok-1", timeout=5)


# RFC 9773 §4.1: a certificate with this AKI keyIdentifier and serial 0x87654321 has this identifier.
RFC9773_AKI = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
RFC9773_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def _cert_with(aki: bytes, serial: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.aurora.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_ari_cert_id_rfc9773_example() -> None:
    assert ari_cert_id(_cert_with(RFC9773_AKI, 0x87654321)) == RFC9773_ID


def test_ari_cert_id_of_a_pebble_certificate_matches_openssl(
    pebble: Pebble, account: AcmeAccount, responder: Http01Responder, tmp_path: Path
) -> None:
    issued = _issue(pebble, account, responder, ["ari.aurora.test"])
    pem = tmp_path / "leaf.pem"
    pem.write_bytes(issued.chain_pem)
    text = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-serial", "-ext", "authorityKeyIdentifier"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    serial_hex = re.search(r"serial=([0-9A-F]+)", text)
    aki_hex = re.search(r"([0-9A-F]{2}(?::[0-9A-F]{2}){19})", text)
    assert serial_hex, text
    assert aki_hex, text
    serial = bytes.fromhex(serial_hex[1].rjust(len(serial_hex[1]) + len(serial_hex[1]) % 2, "0"))
    if serial[0] & 0x80:  # DER INTEGERs are signed
        serial = b"\x00" + serial

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    der = x509.load_pem_x509_certificate(issued.chain_pem).public_bytes(serialization.Encoding.DER)
    assert ari_cert_id(der) == f"{b64(bytes.fromhex(aki_hex[1].replace(':', '')))}.{b64(serial)}"


def test_ari_cert_id_needs_an_aki() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no-aki")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(0x1234).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    with pytest.raises(ValueError, match="serial 1234 has no authority key identifier"):
        ari_cert_id(cert.public_bytes(serialization.Encoding.DER))


def test_renewal_window_follows_pebbles_directory(
    pebble: Pebble, account: AcmeAccount, responder: Http01Responder
) -> None:
    """Pebble 2.4.0 offers no renewalInfo: then there is no window. Should a later Pebble offer it, use it."""
    context = ssl.create_default_context(cafile=pebble.ca_bundle)
    directory = httpx.get(pebble.directory_url, verify=context, timeout=10).json()
    issued = _issue(pebble, account, responder, ["window.aurora.test"])
    leaf = x509.load_pem_x509_certificate(issued.chain_pem)

    window = renewal_window(
        pebble.directory_url, leaf.public_bytes(serialization.Encoding.DER), ca_bundle=pebble.ca_bundle
    )

    if "renewalInfo" not in directory:
        assert window is None
    else:
        assert window is not None
        assert leaf.not_valid_before_utc <= window[0] < window[1] <= leaf.not_valid_after_utc


class _AriServer(http.server.ThreadingHTTPServer):
    """A directory with renewalInfo and one certificate's window, as an ARI server would answer."""

    def __init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{server.server_address[1]}"
                bodies = {
                    "/dir": {"newNonce": f"{base}/nonce", "renewalInfo": f"{base}/renewal-info"},
                    f"/renewal-info/{RFC9773_ID}": {
                        "suggestedWindow": {"start": "2027-01-02T04:00:00Z", "end": "2027-01-03T04:00:00+01:00"}
                    },
                }
                if self.path not in bodies:
                    self.send_error(404)
                    return
                data = json.dumps(bodies[self.path]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_renewal_window_from_a_server_with_renewal_info() -> None:
    """Pebble 2.4.0 has no ARI, so a minimal stand-in answers the two GETs ARI consists of."""
    server = _AriServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dir"
        window = renewal_window(url, _cert_with(RFC9773_AKI, 0x87654321), ca_bundle=None)
        assert window == (datetime(2027, 1, 2, 4, tzinfo=UTC), datetime(2027, 1, 3, 3, tzinfo=UTC))
        assert window[0].tzinfo is UTC
        with pytest.raises(
            AcmeError, match=r"fetching renewal information http://127\.0\.0\.1:\d+/renewal-info/\S+ failed"
        ):
            renewal_window(url, _cert_with(RFC9773_AKI, 0x1234), ca_bundle=None)
    finally:
        server.shutdown()
        server.server_close()

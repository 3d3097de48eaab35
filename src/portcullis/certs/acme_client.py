"""Certificate issuance and renewal over ACME (RFC 8555), renewal information (RFC 9773), revocation.

Pure: this module talks to an ACME server and hands back keys and certificates; sealing, storing
and recording them is the caller's business (ESMA §30: prompt renewal before expiry).
Every issuance makes a new private key, so a renewal never extends the life of an old key.
"""

from __future__ import annotations

import base64
import http.server
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import requests
from acme import challenges, messages
from acme import errors as acme_errors
from acme.client import ClientNetwork, ClientV2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from josepy.errors import DeserializationError
from josepy.interfaces import JSONDeSerializable
from josepy.json_util import field as jose_field
from josepy.jwa import ES256, ES384, ES512, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

logger = logging.getLogger(__name__)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KEY_TYPES = ("ec-p256", "rsa-2048", "rsa-3072")
CHALLENGE_PATH = "/.well-known/acme-challenge/"
# acme retries a badNonce once per post; a server may reject several in a row (Pebble rejects 5% by
# default), so each post gets up to this many of those pairs before the error stands.
_NONCE_ROUNDS = 8
_POLL_FIRST, _POLL_MAX = 0.2, 5.0


class AcmeError(Exception):
    """An ACME exchange failed; the message names the step, the domain and the server's problem."""


@dataclass
class AcmeAccount:
    """An ACME account: its key and, once registered, its URL (the JWS "kid")."""

    key: PrivateKey = field(repr=False)
    kid: str | None = None

    @classmethod
    def generate(cls) -> AcmeAccount:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, key_pem: bytes, kid: str | None = None) -> AcmeAccount:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"ACME account key must be EC or RSA, not {type(key).__name__}")
        return cls(key, kid)

    def key_pem(self) -> bytes:
        """The account key as unencrypted PKCS#8 PEM, for the caller to seal."""
        return _pkcs8(self.key)

    def jwk(self) -> JWK:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return JWKRSA(key=self.key)
        return JWKEC(key=self.key)

    def alg(self) -> JWASignature:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return RS256
        algs = {"secp256r1": ES256, "secp384r1": ES384, "secp521r1": ES512}
        try:
            return algs[self.key.curve.name]
        except KeyError:
            raise ValueError(f"ACME account key on unsupported curve {self.key.curve.name}") from None


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes  # leaf first, then the issuers in the server's order
    key_pem: bytes = field(repr=False)  # the new private key, PKCS#8 PEM, unencrypted: the caller seals it
    not_after: datetime
    serial: int
    order_url: str


class Http01Responder:
    """Serves http-01 key authorizations at /.well-known/acme-challenge/TOKEN from a threaded HTTP server."""

    def __init__(self, host: str = "127.0.0.1", port: int = 80) -> None:
        self.host = host
        self._port = port
        self.tokens: dict[str, str] = {}  # token -> key authorization
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (useful when constructed with port 0)."""
        return self._server.server_address[1] if self._server else self._port

    def key_authorization(self, host: str, token: str) -> str | None:
        """What to answer for `token` asked for on `host`; None gives 404. Subclasses may filter by host."""
        return self.tokens.get(token)

    def serve(self, token: str, key_authorization: str) -> None:
        self.tokens[token] = key_authorization

    def withdraw(self, token: str) -> None:
        self.tokens.pop(token, None)

    def start(self) -> None:
        if self._server is not None:
            return
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = None
                if self.path.startswith(CHALLENGE_PATH):
                    host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                    body = responder.key_authorization(host, self.path[len(CHALLENGE_PATH) :])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode("ascii")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("http-01 responder: " + format, *args)

        self._server = http.server.ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-01", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Http01Responder:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _NewOrder(messages.NewOrder):
    # acme's NewOrder lacks RFC 9773's "replaces", which tells the CA which certificate this renews.
    replaces: str | None = jose_field("replaces", omitempty=True)


class _Network(ClientNetwork):
    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for round_ in range(_NONCE_ROUNDS):
            try:
                return super().post(*args, **kwargs)
            except messages.Error as exc:
                if exc.code != "badNonce" or round_ == _NONCE_ROUNDS - 1:
                    raise
                logger.debug("ACME server rejected nonces twice (badNonce); trying again")
        raise AssertionError("unreachable")


def _network(ca_bundle: str | None, timeout: float, account: AcmeAccount | None = None) -> _Network:
    return _Network(
        key=account.jwk() if account else None,
        alg=account.alg() if account else RS256,
        # requests takes a CA bundle path where acme's signature says bool.
        verify_ssl=ca_bundle if ca_bundle else True,  # type: ignore[arg-type]
        user_agent="portcullis",
        timeout=max(1, round(timeout)),
    )


def _problem(exc: messages.Error) -> str:
    text = f"{exc.typ}: {exc.detail or exc.description or 'no detail'}"
    for sub in exc.subproblems or ():
        who = f" ({sub.identifier.value})" if sub.identifier else ""
        text += f"; {sub.typ}{who}: {sub.detail}"
    return text


@contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except AcmeError:
        raise
    except messages.Error as exc:
        raise AcmeError(f"{what} failed: {_problem(exc)}") from exc
    except acme_errors.Error as exc:
        raise AcmeError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    except requests.RequestException as exc:
        raise AcmeError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    except (ValueError, KeyError, TypeError, DeserializationError) as exc:
        raise AcmeError(f"{what} failed: unexpected response: {type(exc).__name__}: {exc}") from exc


class _Session:
    """One conversation with an ACME server on behalf of one account."""

    def __init__(self, directory_url: str, account: AcmeAccount, ca_bundle: str | None, timeout: float) -> None:
        self.account = account
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        with _step(f"fetching the ACME directory {directory_url}"):
            self.net = _network(ca_bundle, timeout, account)
            self.directory = ClientV2.get_directory(directory_url, self.net)
        self.client = ClientV2(self.directory, self.net)

    def post(self, url: str, obj: JSONDeSerializable | None) -> requests.Response:
        return self.net.post(url, obj, new_nonce_url=self.directory["newNonce"])

    def register(self, contact: Sequence[str]) -> None:
        if self.account.kid:
            self.net.account = messages.RegistrationResource(uri=self.account.kid, body=messages.Registration())
            return
        if self.directory.meta.external_account_required:
            raise AcmeError("account registration failed: the server requires external account binding")
        with _step("account registration"):
            try:
                regr = self.client.new_account(
                    messages.NewRegistration(contact=tuple(contact), terms_of_service_agreed=True)
                )
                kid = regr.uri
            except acme_errors.ConflictError as exc:  # the key already has an account: it answers with its URL
                kid = exc.location
                self.net.account = messages.RegistrationResource(uri=kid, body=messages.Registration())
        if not kid:
            raise AcmeError("account registration failed: the server gave no account URL")
        self.account.kid = kid
        logger.info("registered ACME account %s", kid)

    def poll(self, url: str, what: str) -> dict[str, Any]:
        """POST-as-GET `url` until its status is neither pending nor processing."""
        interval = _POLL_FIRST
        while True:
            with _step(what):
                response = self.post(url, None)
                body: dict[str, Any] = response.json()
            status = body.get("status")
            if status not in ("pending", "processing"):
                return body
            wait = _retry_after(response) or interval
            if time.monotonic() + wait > self.deadline:
                raise AcmeError(f"{what} failed: still {status} after {self.timeout:g} s")
            time.sleep(wait)
            interval = min(interval * 2, _POLL_MAX)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _new_key(key_type: str) -> PrivateKey:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise ValueError(f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}")


def _pkcs8(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(key: PrivateKey | x509.Certificate) -> bytes:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _csr(key: PrivateKey, domains: Sequence[str]) -> x509.CertificateSigningRequest:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _answer(session: _Session, responder: Http01Responder, authz_url: str, served: list[str]) -> str:
    """Start http-01 for one authorization unless it is already valid; returns its domain."""
    with _step(f"fetching authorization {authz_url}"):
        authz = messages.Authorization.from_json(session.post(authz_url, None).json())
    domain: str = authz.identifier.value
    if authz.status == messages.STATUS_VALID:  # the server reused an earlier validation
        return domain
    if authz.status != messages.STATUS_PENDING:
        raise AcmeError(f"authorization for {domain} failed: it is {authz.status.name}")
    challb = next((c for c in authz.challenges if isinstance(c.chall, challenges.HTTP01)), None)
    if challb is None:
        raise AcmeError(f"authorization for {domain} failed: the server offers no http-01 challenge")
    response, key_authorization = challb.chall.response_and_validation(session.account.jwk())
    token: str = challb.chall.encode("token")
    responder.serve(token, key_authorization)
    served.append(token)
    with _step(f"answering the http-01 challenge for {domain}"):
        session.client.answer_challenge(challb, response)
    return domain


def _authorization_error(domain: str, body: dict[str, Any]) -> str:
    for chall in body.get("challenges", ()):
        if chall.get("error"):
            return f"authorization for {domain} failed: {_problem(messages.Error.from_json(chall['error']))}"
    return f"authorization for {domain} failed: it is {body.get('status')}"


def issue(
    directory_url: str,
    *,
    account: AcmeAccount,
    domains: Sequence[str],
    key_type: str = "ec-p256",
    responder: Http01Responder,
    ca_bundle: str | None,
    contact: Sequence[str] = (),
    timeout: float = 60,
    replaces: str | None = None,
) -> Issued:
    """Obtain a certificate for `domains` (all as SANs) on a new private key, proving control by http-01.

    Registers `account` first when it has no URL yet (setting `account.kid`). `replaces` is the RFC 9773
    certificate id of the certificate this one renews.
    """
    names = list(dict.fromkeys(d.strip().lower().rstrip(".") for d in domains))
    if not names or not all(names):
        raise ValueError("issue() needs at least one non-empty domain")
    key = _new_key(key_type)
    csr = _csr(key, names)
    listed = ", ".join(names)
    session = _Session(directory_url, account, ca_bundle, timeout)
    session.register(contact)

    with _step(f"new order for {listed}"):
        identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=d) for d in names]
        response = session.post(session.directory["newOrder"], _NewOrder(identifiers=identifiers, replaces=replaces))
        order = messages.Order.from_json(response.json())
        order_url: str = response.headers["Location"]

    served: list[str] = []
    try:
        pending = [(_answer(session, responder, url, served), url) for url in order.authorizations]
        failures = []
        for domain, url in pending:
            body = session.poll(url, f"authorization for {domain}")
            if body.get("status") != "valid":
                failures.append(_authorization_error(domain, body))
        if failures:
            raise AcmeError("; ".join(failures))
    finally:
        for token in served:
            responder.withdraw(token)

    body = session.poll(order_url, f"order for {listed}")
    if body.get("status") == "ready":
        with _step(f"finalizing the order for {listed}"):
            body = session.post(order.finalize, messages.CertificateRequest(csr=csr)).json()
        if body.get("status") == "processing":
            body = session.poll(order_url, f"order for {listed}")
    if body.get("status") != "valid" or not body.get("certificate"):
        error = body.get("error")
        why = _problem(messages.Error.from_json(error)) if error else f"order is {body.get('status')}"
        raise AcmeError(f"issuance for {listed} failed: {why}")

    with _step(f"downloading the certificate for {listed}"):
        chain = x509.load_pem_x509_certificates(session.post(body["certificate"], None).content)
    leaf = chain[0]
    if _spki(leaf) != _spki(key):
        raise AcmeError(f"issuance for {listed} failed: the server's certificate is not for the key we sent")
    try:
        sans = set(
            leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        sans = set()
    if sans != set(names):
        raise AcmeError(f"issuance for {listed} failed: the certificate names {', '.join(sorted(sans)) or 'nothing'}")
    logger.info("issued certificate serial %x for %s (%s)", leaf.serial_number, listed, order_url)
    return Issued(
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        key_pem=_pkcs8(key),
        not_after=leaf.not_valid_after_utc,
        serial=leaf.serial_number,
        order_url=order_url,
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def ari_cert_id(cert_der: bytes) -> str:
    """RFC 9773 certificate id: base64url(AKI keyIdentifier) "." base64url(serial's DER content octets)."""
    cert = x509.load_der_x509_certificate(cert_der)
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    if not aki:
        raise ValueError(f"certificate serial {cert.serial_number:x} has no authority key identifier")
    serial = cert.serial_number
    # DER INTEGER content: big-endian two's complement, minimal, so a set top bit gets a 0x00 in front.
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
    return f"{_b64url(aki)}.{_b64url(serial_bytes)}"


def renewal_window(directory_url: str, cert_der: bytes, *, ca_bundle: str | None) -> tuple[datetime, datetime] | None:
    """The server's suggested renewal window (start, end) for a certificate, or None without ARI support.

    Do not ask about an expired certificate (RFC 9773 §4.2): renew it at once.
    """
    cert_id = ari_cert_id(cert_der)
    net = _network(ca_bundle, 30)
    with _step(f"fetching the ACME directory {directory_url}"):
        directory = ClientV2.get_directory(directory_url, net)
    try:
        base: str = directory["renewalInfo"]
    except KeyError:
        return None
    url = f"{base.rstrip('/')}/{cert_id}"
    with _step(f"fetching renewal information {url}"):
        window = messages.RenewalInfo.from_json(net.get(url).json()).suggested_window
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    if end <= start:
        raise AcmeError(f"renewal information {url} is invalid: window ends ({end}) before it starts ({start})")
    return start, end


def revoke(
    directory_url: str, *, account: AcmeAccount, cert_der: bytes, ca_bundle: str | None, reason: int = 0
) -> None:
    """Revoke a certificate with the account that ordered it (RFC 5280 reason code)."""
    cert = x509.load_der_x509_certificate(cert_der)
    session = _Session(directory_url, account, ca_bundle, 60)
    session.register(())
    with _step(f"revocation of certificate serial {cert.serial_number:x}"):
        session.client.revoke(cert, reason)
    logger.info("revoked certificate serial %x (reason %d)", cert.serial_number, reason)

"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the notification tests.

Import the fixture explicitly: `from tests.certs.smtp_server import smtp_server_fixture  # noqa: F401`;
tests then ask for `smtp_server`.
For AUTH or TLS build one directly: `with SmtpTestServer(auth_users={...}, tls="starttls") as server:`.

Every message the server accepts is recorded as it arrived (envelope, raw bytes)
and parsed by the stdlib with its own policy, independently of the sender's
code. The server can refuse given recipients and answer a stage (MAIL, RCPT,
DATA) with a temporary failure a given number of times.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.certs.pki import localhost_tls

HOST = "127.0.0.1"
Stage = Literal["MAIL", "RCPT", "DATA"]
TlsMode = Literal["none", "starttls", "implicit"]


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    tls: bool
    authenticated_as: str | None


class SmtpTestServer:
    """An in-process SMTP server on a free port; use as a context manager."""

    def __init__(
        self, *, auth_users: Mapping[str, str] | None = None, tls: TlsMode = "none", auth_echo: bool = False
    ) -> None:
        """`auth_users`: None = no AUTH offered; {} = AUTH offered, every login refused (535).

        `auth_echo`: a refused login is answered with the credentials it carried, in
        clear and in base64, as a careless server might; for tests that secrets are scrubbed.
        """
        self.host = HOST
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self.ca_file: str | None = None  # the CA that signed the server certificate, when tls != "none"
        self._auth_users = dict(auth_users) if auth_users is not None else None
        self._tls = tls
        self._auth_echo = auth_echo
        self._refused: dict[str, str] = {}
        self._failures: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._controller: _FreePortController | None = None

    def refuse(self, address: str, reply: str = "550 5.1.1 mailbox unavailable") -> None:
        """Answer RCPT TO for this address with `reply` (case-insensitive match)."""
        with self._lock:
            self._refused[address.lower()] = reply

    def fail(self, stage: Stage, reply: str = "451 4.3.0 try again later", times: int = 1) -> None:
        """Answer the next `times` commands of `stage` with `reply`, then behave again."""
        with self._lock:
            self._failures.setdefault(stage, []).extend([reply] * times)

    def start(self) -> None:
        kwargs: dict[str, Any] = {"server_hostname": "smtp.test.invalid"}
        if self._tls != "none":
            self._tmp = tempfile.TemporaryDirectory(prefix="smtp-test-")
            context, self.ca_file = make_server_tls(Path(self._tmp.name))
            if self._tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self._auth_users is not None:
            # Plain-text AUTH is fine on loopback and lets tests log in without TLS.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = _FreePortController(_Handler(self), hostname=HOST, port=0, **kwargs)
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SmtpTestServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _take_failure(self, stage: Stage) -> str | None:
        with self._lock:
            pending = self._failures.get(stage)
            return pending.pop(0) if pending else None

    def _refusal(self, address: str) -> str | None:
        with self._lock:
            return self._refused.get(address.lower())

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.messages.append(mail)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        users = self._auth_users or {}
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            if login in users and users[login].encode() == auth_data.password:
                return AuthResult(success=True, auth_data=login)
            if self._auth_echo:
                plain = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password).decode()
                said = f"{login} {auth_data.password.decode()} {base64.b64encode(auth_data.password).decode()} {plain}"
                return AuthResult(success=False, handled=False, message=f"535 5.7.8 refused: {said}")
        return AuthResult(success=False, handled=False)


class _Handler:
    """aiosmtpd hooks; each returns the reply line the server sends."""

    def __init__(self, owner: SmtpTestServer) -> None:
        self._owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        failure = self._owner._take_failure("MAIL")
        if failure is not None:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        failure = self._owner._take_failure("RCPT") or self._owner._refusal(address)
        if failure is not None:
            return failure
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._owner._take_failure("DATA")
        if failure is not None:
            return failure
        raw = envelope.original_content or b""
        parsed = BytesParser(policy=default_policy).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        transport = server.transport
        self._owner._record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
                authenticated_as=session.auth_data if session.authenticated else None,
            )
        )
        return "250 OK queued"


class _FreePortController(Controller):
    """Binds port 0 and reads back the port the kernel chose: no race for a 'free' port."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def make_server_tls(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    ca_file, cert_file, key_file = localhost_tls(directory, (HOST,))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(ca_file)


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 but not listening: connections are refused, and no one else can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen(4)
        yield sock.getsockname()[1]


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server

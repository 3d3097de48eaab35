"""The ACME server's renewal window (RFC 9773) moves a certificate's renewal, where the server offers one.

Pebble 2.4.0 has no renewalInfo, so a stand-in answers the directory and the window, as an ARI server would.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select

from portcullis.certs.models import CertRenewal, DeploymentKind, RenewalMethod
from portcullis.certs.register import CertIn, Place, record_found, register_certificate
from portcullis.certs.renewal import plan_renewals, refresh_ari
from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from tests.certs.pki import issue

SYSTEM = Principal.system("tests")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cert_id(cert: x509.Certificate) -> str:
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None
    n = cert.serial_number
    length = (n.bit_length() + 8) // 8  # DER INTEGER content: room for a clear sign bit
    return f"{b64url(aki)}.{b64url(n.to_bytes(length, 'big'))}"


class AriServer(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.window: dict[str, str] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{server.server_address[1]}"
                body: Any
                if self.path == "/dir":
                    body = {"newNonce": f"{base}/nonce", "renewalInfo": f"{base}/renewal-info"}
                elif self.path.startswith("/renewal-info/"):
                    server.asked.append(self.path.removeprefix("/renewal-info/"))
                    body = {"suggestedWindow": server.window}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def ari() -> Iterator[AriServer]:
    server = AriServer()
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_servers_window_starts_the_renewal_before_our_own_date(rt: Runtime, ari: AriServer) -> None:
    now = rt.clock.now()
    ca = issue("ARI Test CA", ca=True, now=now)
    leaf = issue(
        "www.ari.test",
        issuer=ca,
        sans=["www.ari.test"],
        now=now,
        not_before=now - timedelta(days=10),
        not_after=now + timedelta(days=80),
    )
    directory = f"http://127.0.0.1:{ari.server_address[1]}/dir"
    with rt.work(SYSTEM) as ctx:
        found = record_found(ctx, [leaf.cert], Place(DeploymentKind.ENDPOINT, "www.ari.test:443"))
        register_certificate(
            ctx, found.leaf.id, CertIn(renewal_method=RenewalMethod.ACME, renewal={"directory": directory})
        )
        # A third of 90 days left is 30 days away: by our own arithmetic nothing is due.
        assert plan_renewals(ctx) == 0
    start, end = now + timedelta(hours=2), now + timedelta(days=1)
    ari.window = {"start": start.isoformat(), "end": end.isoformat()}
    assert refresh_ari(rt) == {"asked": 1, "windows": 1}
    assert ari.asked == [cert_id(leaf.cert)]
    with rt.work(SYSTEM) as ctx:
        assert plan_renewals(ctx) == 0  # the window has not opened yet
    clock = rt.clock
    clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    with rt.work(SYSTEM) as ctx:
        assert plan_renewals(ctx) == 1
        [r] = ctx.session.scalars(select(CertRenewal)).all()
        assert "renewal window" in r.reason
    with rt.session() as s:
        rows = s.scalars(select(LedgerRecord).where(LedgerRecord.action == "cert.ari_window")).all()
        assert len(rows) == 1
        assert start.isoformat() in json.dumps(decode(rows[0]))
    # Asking again with the same answer changes nothing and records nothing.
    assert refresh_ari(rt) == {"asked": 1, "windows": 1}
    with rt.session() as s:
        assert len(s.scalars(select(LedgerRecord).where(LedgerRecord.action == "cert.ari_window")).all()) == 1

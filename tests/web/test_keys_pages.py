"""The key pages: the register with states and overdue rotations, a custodian's approval through the page,
a key's detail with its history, and never a byte of material."""

from __future__ import annotations

import base64
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from portcullis.core.clock import FrozenClock
from portcullis.core.runtime import Runtime
from portcullis.keys import dual
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import KeyOperation, KeyState, KeyVersion
from portcullis.keys.register import change_state
from portcullis.keys.service import backends
from tests.keys.world import build_key_world
from tests.web.helpers import csrf_of, inline_problems, login, post_form


def test_a_custodian_approves_from_the_register(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = build_key_world(rt)
    w.register(crypto_period_days=30)
    w.register(key="vault", name="Vault", purpose="wallet backups", algorithm="aes-256")
    with rt.work(w.p("sofia")) as ctx:
        change_state(ctx, "vault", KeyState.DEACTIVATED, "moved to the HSM")
        op = dual.request(ctx, "vault", "destroy", "end of life").id
    clock.advance(timedelta(days=31))
    login(client, w.users["carla"], clock)
    page = client.get("/keys")
    assert page.status_code == 200
    assert "overdue" in page.text  # payments-signing passed its 30-day crypto-period
    assert "0 of 2" in page.text
    assert inline_problems(page.text) == []
    r = client.post(f"/keys/operations/{op}/approve", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    with rt.session() as s:
        assert s.get(KeyOperation, op).approvals == [w.people["carla"]]  # type: ignore[union-attr]
    r = post_form(client, "/keys", f"/keys/operations/{op}/approve", {})
    assert "already approved" in r.text


def test_the_detail_page_shows_history_and_protection_never_material(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    w = build_key_world(rt)
    w.register()
    login(client, w.users["aude"], clock)
    page = client.get("/keys/payments-signing")
    assert page.status_code == 200
    assert "Payments gateway" in page.text
    assert "activated at registration" in page.text
    software = backends(rt)["software"]
    assert isinstance(software, SoftwareBackend)
    with rt.session() as s:
        ref = s.scalar(select(KeyVersion.ref))
    material = software.open(Algorithm.ECDSA_P256, ref or b"")
    for form in (material.hex(), base64.b64encode(material).decode(), base64.b64encode(ref or b"").decode()):
        assert form not in page.text
    assert client.get("/keys/nope").status_code == 404

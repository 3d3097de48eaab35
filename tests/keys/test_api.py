"""The keys API: register, use under policy, state changes, dual control, replacement, bytes as base64."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from portcullis.core.runtime import Runtime
from tests.keys.world import KeyWorld, build_key_world, email


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_register_use_and_replace_through_the_api(w: KeyWorld, client: TestClient) -> None:
    sofia, carla, cedric = (w.users[n].headers for n in ("sofia", "carla", "cedric"))
    body = {
        "key": "api-signing",
        "name": "API signing",
        "purpose": "signs API responses",
        "algorithm": "ed25519",
        "owner_email": email("sofia"),
        "custodian_emails": [email("carla"), email("cedric"), email("chloe")],
        "asset_external_ids": ["A-PAY"],
        "policy": {"sign": ["role:key_custodian"], "verify": ["any"]},
    }
    r = client.post("/api/v1/keys", json=body, headers=sofia)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "active"
    assert client.post("/api/v1/keys", json=body, headers=sofia).status_code == 409
    assert client.post("/api/v1/keys", json={**body, "key": "x", "algorithm": "des"}, headers=sofia).status_code == 422
    r = client.post("/api/v1/keys/api-signing/sign", json={"data": b64(b"hello")}, headers=carla)
    assert r.status_code == 200, r.text
    sig = r.json()
    r = client.post(
        "/api/v1/keys/api-signing/verify",
        json={"data": b64(b"hello"), "signature": sig["signature"], "version": sig["version"]},
        headers=cedric,
    )
    assert r.json() == {"valid": True}
    assert client.post("/api/v1/keys/api-signing/sign", json={"data": "%%%"}, headers=carla).status_code == 422
    assert client.post("/api/v1/keys/api-signing/sign", json={"data": b64(b"x")}, headers=sofia).status_code == 403
    r = client.post("/api/v1/keys/api-signing/state", json={"action": "suspend", "reason": "audit"}, headers=sofia)
    assert r.json()["state"] == "suspended"
    assert client.post("/api/v1/keys/api-signing/sign", json={"data": b64(b"x")}, headers=carla).status_code == 409
    r = client.post(
        "/api/v1/keys/api-signing/replace", json={"cause": "compromised", "reason": "leaked"}, headers=sofia
    )
    assert r.status_code == 201, r.text
    assert (r.json()["old_key"], r.json()["new_key"]) == ("api-signing", "api-signing-r2")
    shown = client.get("/api/v1/keys/api-signing", headers=w.users["aude"].headers).json()
    assert shown["state"] == "compromised"
    assert [v["uses"] for v in shown["versions"]] == [2]
    assert "ref" not in str(shown)


def test_destruction_through_the_api_needs_two_custodians(w: KeyWorld, client: TestClient) -> None:
    w.register()
    sofia = w.users["sofia"].headers
    client.post(
        "/api/v1/keys/payments-signing/state", json={"action": "deactivate", "reason": "retired"}, headers=sofia
    )
    op = client.post("/api/v1/keys/payments-signing/destroy", json={"reason": "end of life"}, headers=sofia).json()
    assert client.post(f"/api/v1/keys/operations/{op['id']}/approve", headers=sofia).status_code == 403
    r = client.post(f"/api/v1/keys/operations/{op['id']}/approve", headers=w.users["carla"].headers)
    assert r.json()["approvals"] == [w.people["carla"]]
    assert client.post(f"/api/v1/keys/operations/{op['id']}/execute", headers=sofia).status_code == 409
    pending = client.get("/api/v1/keys/operations/pending", headers=sofia).json()
    assert [p["id"] for p in pending] == [op["id"]]

"""The ledger over REST: streams, checkpoints, proofs checked independently, verification, record order."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from fastapi.testclient import TestClient
from sqlalchemy import select

from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerRecord, LedgerStream
from portcullis.ledger.note import Checkpoint, VerifierKey, open_note
from tests.factories import make_user
from tests.ledger.test_tamper import _as_owner, _fill

API = "/api/v1/ledger"


def _stored(rt: Runtime, stream: str = "audit") -> list[tuple[int, int, bytes]]:
    """(id, seq, payload) of every stored record, straight from the table."""
    with rt.session() as s:
        q = (
            select(LedgerRecord.id, LedgerRecord.seq, LedgerRecord.payload)
            .join(LedgerStream, LedgerStream.id == LedgerRecord.stream_id)
            .where(LedgerStream.name == stream)
            .order_by(LedgerRecord.seq)
        )
        return [(i, seq, bytes(p)) for i, seq, p in s.execute(q)]


def _leaf(payload: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + payload).digest()


def _signed(note: str, key_text: str) -> Checkpoint:
    """What a checkpoint note says, once its signature checks out under the published key."""
    return Checkpoint.parse(open_note(note, VerifierKey.parse(key_text)))


def _key(client: TestClient, headers: dict[str, str]) -> str:
    r = client.get(f"{API}/pubkey", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["verifier_key"])


def test_pubkey_is_the_public_half_of_the_key_file(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.MANAGEMENT_BODY).headers
    text = _key(client, h)
    pem = rt.settings.effective_ledger_key_file.read_bytes()
    private = load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    name, _, material = text.split("+", 2)
    assert name == f"{rt.settings.ledger_origin}/ledger"
    assert base64.b64decode(material) == b"\x01" + raw


def test_streams_and_signing_checkpoints(rt: Runtime, client: TestClient) -> None:
    auditor = make_user(rt, Role.AUDITOR)
    _fill(rt, 30)
    streams = client.get(f"{API}/streams", headers=auditor.headers).json()
    (audit,) = [s for s in streams if s["name"] == "audit"]
    stored = _stored(rt)
    assert audit["size"] == len(stored)
    assert audit["root"] == merkle.root_of([_leaf(p) for _, _, p in stored]).hex()
    assert audit["last_checkpoint_size"] is None
    assert audit["last_checkpoint_at"] is None
    assert audit["last_verification"] is None
    assert audit["purged_below"] == 0

    # Reading the ledger is not enough to sign for it.
    board = make_user(rt, Role.MANAGEMENT_BODY)
    r = client.post(f"{API}/checkpoints", headers=board.headers)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"

    r = client.post(f"{API}/checkpoints", headers=auditor.headers)
    assert r.status_code == 200, r.text
    (made,) = r.json()
    stored = _stored(rt)
    # The record of who signed is itself covered by the checkpoint.
    assert made["stream"] == "audit"
    assert made["size"] == len(stored)
    last = json.loads(stored[-1][2])
    assert last["action"] == "ledger.checkpointed"
    assert last["actor"]["name"] == auditor.user.email
    assert last["streams"] == ["audit"]

    key = _key(client, auditor.headers)
    cps = client.get(f"{API}/streams/audit/checkpoints", headers=auditor.headers).json()
    assert len(cps) == 1
    said = _signed(cps[0]["note"], key)
    assert said.size == len(stored)
    assert said.root == merkle.root_of([_leaf(p) for _, _, p in stored])
    assert said.origin == f"{rt.settings.ledger_origin}/audit"

    # Nothing grew since: nothing to sign, and nothing recorded.
    r = client.post(f"{API}/checkpoints", headers=auditor.headers)
    assert r.json() == []
    assert len(_stored(rt)) == len(stored)

    _fill(rt, 5)
    client.post(f"{API}/checkpoints", headers=auditor.headers)
    cps = client.get(f"{API}/streams/audit/checkpoints", headers=auditor.headers).json()
    assert [c["size"] for c in cps] == [len(stored) + 6, len(stored)]  # latest first
    newest = client.get(f"{API}/streams/audit/checkpoints?limit=1", headers=auditor.headers).json()
    assert [c["size"] for c in newest] == [len(stored) + 6]
    (audit,) = [s for s in client.get(f"{API}/streams", headers=auditor.headers).json() if s["name"] == "audit"]
    assert audit["last_checkpoint_size"] == len(stored) + 6
    assert audit["last_checkpoint_at"].startswith("2026-11-24T09:")

    r = client.get(f"{API}/streams/nope/checkpoints", headers=auditor.headers)
    assert r.status_code == 404
    assert "nope" in r.json()["detail"]


def test_inclusion_proofs_verify_against_the_signed_root(rt: Runtime, client: TestClient) -> None:
    auditor = make_user(rt, Role.AUDITOR)
    _fill(rt, 40)
    h = auditor.headers
    r = client.get(f"{API}/streams/audit/proof/3", headers=h)
    assert r.status_code == 404  # no checkpoint covers anything yet
    assert r.headers["content-type"] == "application/problem+json"
    client.post(f"{API}/checkpoints", headers=h)
    key = _key(client, h)
    stored = _stored(rt)
    for index in (0, 1, 17, len(stored) // 2, len(stored) - 1):
        r = client.get(f"{API}/streams/audit/proof/{index}", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        said = _signed(body["checkpoint"], key)
        payload = stored[index][2]
        assert body["payload"] == json.loads(payload)
        proof = [bytes.fromhex(x) for x in body["proof"]]
        assert merkle.verify_inclusion(_leaf(payload), index, said.size, proof, said.root)
        # The same proof does not fit a neighbouring record.
        other = stored[index - 1 if index else 1][2]
        assert not merkle.verify_inclusion(_leaf(other), index, said.size, proof, said.root)

    _fill(rt, 3)  # beyond the checkpoint
    r = client.get(f"{API}/streams/audit/proof/{len(stored) + 1}", headers=h)
    assert r.status_code == 404
    assert "not covered by the latest checkpoint" in r.json()["detail"]

    _as_owner(rt, "DELETE FROM ledger_record WHERE seq = 5")
    r = client.get(f"{API}/streams/audit/proof/5", headers=h)
    assert r.status_code == 404
    assert "purged" in r.json()["detail"]


def test_consistency_between_two_signed_sizes(rt: Runtime, client: TestClient) -> None:
    auditor = make_user(rt, Role.AUDITOR)
    h = auditor.headers
    _fill(rt, 21)
    client.post(f"{API}/checkpoints", headers=h)
    _fill(rt, 50)
    client.post(f"{API}/checkpoints", headers=h)
    key = _key(client, h)
    new, old = (_signed(c["note"], key) for c in client.get(f"{API}/streams/audit/checkpoints", headers=h).json())
    r = client.get(f"{API}/streams/audit/consistency", headers=h, params={"from": old.size, "to": new.size})
    assert r.status_code == 200, r.text
    proof = [bytes.fromhex(x) for x in r.json()["proof"]]
    assert proof
    assert merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert not merkle.verify_consistency(old.size, new.size, new.root, new.root, proof)

    # Any two sizes, not only signed ones; "to" defaults to the current size.
    stored = _stored(rt)
    r = client.get(f"{API}/streams/audit/consistency", headers=h, params={"from": 7})
    body = r.json()
    assert body["to_size"] == len(stored)
    leaves = [_leaf(p) for _, _, p in stored]
    assert merkle.verify_consistency(
        7, len(stored), merkle.root_of(leaves[:7]), merkle.root_of(leaves), [bytes.fromhex(x) for x in body["proof"]]
    )

    r = client.get(f"{API}/streams/audit/consistency", headers=h, params={"from": 9, "to": 4})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "from"
    r = client.get(f"{API}/streams/audit/consistency", headers=h, params={"from": 1, "to": len(stored) + 1})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "to"
    r = client.get(f"{API}/streams/audit/consistency", headers=h, params={"from": -1})
    assert r.status_code == 422


def _audit_entry(streams: list[dict[str, Any]]) -> dict[str, Any]:
    (audit,) = [s for s in streams if s["name"] == "audit"]
    return audit


def test_verify_finds_a_changed_record_and_remembers_the_result(rt: Runtime, client: TestClient) -> None:
    board = make_user(rt, Role.MANAGEMENT_BODY)
    h = board.headers
    _fill(rt, 40)
    with rt.session() as s:
        from portcullis.ledger.checkpoints import checkpoint_all

        checkpoint_all(s, rt.signer, rt.clock.now())

    r = client.post(f"{API}/verify", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    (report,) = r.json()["reports"]
    assert report["records_checked"] == len(_stored(rt)) - 1  # all but the verification's own record
    assert report["checkpoints_checked"] == 1
    first = _audit_entry(client.get(f"{API}/streams", headers=h).json())["last_verification"]
    assert first["ok"] is True
    assert first["problems"] == []
    assert first["by"] == board.user.email

    _as_owner(rt, "UPDATE ledger_record SET payload = :p WHERE seq = 23", p=b'{"action":"forged"}')
    r = client.post(f"{API}/verify", headers=h, params={"stream": "audit"})
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is False
    assert [(p["index"], p["kind"]) for p in body["reports"][0]["problems"]] == [(23, "changed")]

    last = _audit_entry(client.get(f"{API}/streams", headers=h).json())["last_verification"]
    assert last["ok"] is False
    assert len(last["problems"]) == 1
    assert last["problems"][0].startswith("audit[23]: changed")
    assert last["seq"] > first["seq"]
    # The verification is on the record: the newest audit record says what was found.
    newest = json.loads(_stored(rt)[-1][2])
    assert newest["action"] == "ledger.verified"
    assert newest["object_id"] == "audit"
    assert newest["results"][0]["ok"] is False

    r = client.post(f"{API}/verify", headers=h, params={"stream": "nope"})
    assert r.status_code == 404


def test_records_newest_first_across_pages(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.AUDITOR).headers
    _fill(rt, 23)
    stored = _stored(rt)
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        params: dict[str, Any] = {"order": "desc", "limit": 10}
        if after is not None:
            params["after"] = after
        page = client.get(f"{API}/records", headers=h, params=params).json()
        assert page["total"] == len(stored)
        seen += [item["seq"] for item in page["items"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert seen == [seq for _, seq, _ in reversed(stored)]
    assert pages == -(-len(stored) // 10)
    asc = client.get(f"{API}/records", headers=h, params={"limit": 5, "action": "thing.created"}).json()
    assert [i["payload"]["object_id"] for i in asc["items"]] == ["0", "1", "2", "3", "4"]
    desc = client.get(f"{API}/records", headers=h, params={"limit": 2, "order": "desc", "action": "thing.created"})
    assert [i["payload"]["object_id"] for i in desc.json()["items"]] == ["22", "21"]
    assert client.get(f"{API}/records", headers=h, params={"order": "sideways"}).status_code == 422


def test_staff_gets_403_everywhere(rt: Runtime, client: TestClient) -> None:
    staff = make_user(rt, Role.STAFF).headers
    _fill(rt, 3)
    before = _stored(rt)
    for method, path in [
        ("GET", "/streams"),
        ("GET", "/streams/audit/checkpoints"),
        ("GET", "/streams/audit/proof/0"),
        ("GET", "/streams/audit/consistency?from=1"),
        ("GET", "/pubkey"),
        ("POST", "/checkpoints"),
        ("POST", "/verify"),
        ("GET", "/records?order=desc"),
    ]:
        r = client.request(method, API + path, headers=staff)
        assert r.status_code == 403, (method, path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert _stored(rt) == before  # nothing signed, nothing verified, nothing recorded

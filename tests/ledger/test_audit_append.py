from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from portcullis.accounts import service
from portcullis.accounts.models import User
from portcullis.core.canonical import canonical_bytes
from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import record_change
from tests.factories import PASSWORD


def _count(rt: Runtime, model: type) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_change_and_record_commit_together(rt: Runtime) -> None:
    with rt.work(Principal.system("t")) as ctx:
        user = service.create_user(ctx, "eva@example.eu", "Eva Lind", "auditor", PASSWORD)
    with rt.session() as s:
        rec = s.scalars(select(LedgerRecord).where(LedgerRecord.action == "user.created")).one()
    body = json.loads(rec.payload)
    assert body["object_id"] == str(user.id)
    assert body["actor"]["name"] == "system:t"
    assert body["changes"]["email"] == [None, "eva@example.eu"]
    assert body["time"] == "2026-11-24T09:00:00Z"
    # The stored bytes are canonical (RFC 8785) and the leaf hash is RFC 9162's.
    assert canonical_bytes(body) == rec.payload
    assert rec.leaf_hash == hashlib.sha256(b"\x00" + rec.payload).digest()


def test_audit_failure_rolls_back_the_change(rt: Runtime) -> None:
    """Fail closed: if the record cannot be appended, the change it records does not happen."""
    users, records = _count(rt, User), _count(rt, LedgerRecord)
    with pytest.raises(ValueError), rt.work(Principal.system("t")) as ctx:
        service.create_user(ctx, "kai@example.eu", "Kai", "staff", PASSWORD)
        # NaN has no JSON form: canonicalisation refuses it, so the append fails.
        record_change(ctx, "user.flagged", "user", 1, None, {"score": float("nan")})
    assert _count(rt, User) == users
    assert _count(rt, LedgerRecord) == records


def test_sequence_numbers_are_dense_per_stream(rt: Runtime) -> None:
    with rt.work(Principal.system("t")) as ctx:
        for i in range(5):
            service.create_user(ctx, f"u{i}@example.eu", f"U {i}", "staff", PASSWORD)
    with rt.session() as s:
        seqs = list(s.scalars(select(LedgerRecord.seq).order_by(LedgerRecord.seq)))
    assert seqs == list(range(len(seqs)))
    assert len(seqs) == 5


def test_secret_named_fields_are_masked(rt: Runtime) -> None:
    with rt.work(Principal.system("t")) as ctx:
        record_change(ctx, "x.y", "thing", 1, None, {"api_token": "s3cr3t-value", "name": "ok"})
    with rt.session() as s:
        payload = s.scalars(select(LedgerRecord.payload).where(LedgerRecord.action == "x.y")).one()
    assert b"s3cr3t-value" not in payload
    assert b'"name":[null,"ok"]' in payload


def test_a_batch_of_changes_is_one_append_with_dense_sequence(rt: Runtime) -> None:
    from portcullis.ledger.service import Change, record_changes

    with rt.work(Principal.system("t")) as ctx:
        record_change(ctx, "first", "thing", 0)
        refs = record_changes(ctx, [Change("thing.opened", "thing", i, None, {"n": i}) for i in range(40)])
    assert [r.seq for r in refs] == list(range(1, 41))
    with rt.session() as s:
        rows = list(s.execute(select(LedgerRecord.seq, LedgerRecord.payload).order_by(LedgerRecord.seq)))
    assert [seq for seq, _ in rows] == list(range(41))
    assert json.loads(rows[40][1])["changes"]["n"] == [None, 39]
    assert all(json.loads(p)["actor"]["name"] == "system:t" for _, p in rows)

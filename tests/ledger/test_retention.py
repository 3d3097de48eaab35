"""Purging expired payloads keeps the ledger verifiable and kept records provable (§23)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.errors import NotFound, PermissionDenied
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.ledger import merkle, queries
from portcullis.ledger.checkpoints import checkpoint_all
from portcullis.ledger.models import LedgerNode, LedgerRecord
from portcullis.ledger.retention import purge_stream
from portcullis.ledger.service import AUDIT
from tests.factories import make_user
from tests.ledger.test_tamper import _as_owner, _checkpoint, _fill, _verify


def _records(rt: Runtime) -> list[int]:
    with rt.session() as s:
        return list(s.scalars(select(LedgerRecord.seq).order_by(LedgerRecord.seq)))


def test_purge_whole_tiles_then_verify_and_prove(rt: Runtime, clock: FrozenClock) -> None:
    _fill(rt, 100)
    _checkpoint(rt)
    clock.advance(timedelta(days=400))
    _fill(rt, 30)
    _checkpoint(rt)
    with rt.work(Principal.system("t")) as ctx:
        result = purge_stream(ctx, AUDIT, days=365)
    # 100 records expired; whole tiles of 16 go: 0..95.
    assert (result.purged_from, result.purged_to) == (0, 96)
    kept = _records(rt)
    assert kept[0] == 96
    assert len(kept) == 130 - 96 + 1  # the purge wrote its own record
    report = _verify(rt)
    assert report.ok, report.problems
    with rt.session() as s:
        checkpoint_all(s, rt.signer, rt.clock.now())
    with rt.session() as s:
        proof = queries.inclusion(s, AUDIT, 120)
        assert merkle.verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]), 120, proof["tree_size"],
            [bytes.fromhex(h) for h in proof["proof"]], bytes.fromhex(proof["root"]),
        )
        with pytest.raises(NotFound, match="purged"):
            queries.inclusion(s, AUDIT, 10)
        purge_record = s.scalars(select(LedgerRecord).where(LedgerRecord.action == "ledger.purged")).one()
        assert b'"records":96' in purge_record.payload
        assert s.scalar(select(func.count()).select_from(LedgerNode).where(LedgerNode.level == 4)) == 130 // 16
    assert _verify(rt).ok


def test_nothing_expires_inside_the_period(rt: Runtime, clock: FrozenClock) -> None:
    _fill(rt, 40)
    clock.advance(timedelta(days=10))
    with rt.work(Principal.system("t")) as ctx:
        assert purge_stream(ctx, AUDIT, days=365).count == 0
    assert len(_records(rt)) == 40


def test_default_retention_comes_from_the_tier(rt: Runtime, clock: FrozenClock) -> None:
    _fill(rt, 40)
    clock.advance(timedelta(days=1826))  # standard tier keeps critical records 1825 days
    with rt.work(Principal.system("t")) as ctx:
        result = purge_stream(ctx, AUDIT, dry_run=True)
    assert result.retention_days == 1825
    assert result.purged_to == 32
    assert len(_records(rt)) == 40  # a dry run deletes nothing


def test_only_a_ledger_admin_purges(rt: Runtime) -> None:
    _fill(rt, 20)
    officer = make_user(rt, Role.SECURITY_OFFICER)
    with pytest.raises(PermissionDenied), rt.work(officer.principal) as ctx:
        purge_stream(ctx, AUDIT, days=1)


def test_purging_leaves_tampering_detectable(rt: Runtime, clock: FrozenClock) -> None:
    _fill(rt, 64)
    clock.advance(timedelta(days=400))
    _fill(rt, 20)
    _checkpoint(rt)
    with rt.work(Principal.system("t")) as ctx:
        purge_stream(ctx, AUDIT, days=365)
    _checkpoint(rt)
    _as_owner(rt, "UPDATE ledger_node SET hash = :h WHERE level = 4 AND idx = 1", h=b"\x00" * 32)
    assert not _verify(rt).ok

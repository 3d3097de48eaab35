"""Every way of tampering with a stored stream is detected and located.

The attacker here is a database owner: the append-only triggers are switched
off first, as someone with the owner's rights could.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.ledger import verify_ranges
from portcullis.ledger.checkpoints import sign_checkpoint
from portcullis.ledger.models import LedgerCheckpoint, LedgerStream
from portcullis.ledger.note import Signer
from portcullis.ledger.service import AUDIT, record_change
from portcullis.ledger.store import get_stream
from portcullis.ledger.verify import StreamReport, verify_all

N = 100


def _fill(rt: Runtime, n: int = N) -> None:
    with rt.work(Principal.system("t")) as ctx:
        for i in range(n):
            record_change(ctx, "thing.created", "thing", i, None, {"name": f"thing {i}"})


def _checkpoint(rt: Runtime) -> str:
    with rt.session() as s:
        row = sign_checkpoint(s, get_stream(s, AUDIT), rt.signer, rt.clock.now())
        assert row is not None
        return row.note


# How the tests verify: in this process, or in aligned ranges on forked workers (the way long streams are
# verified), with ranges made small enough that the 100 records here span four of them. Either way chunks are
# made 32 records wide, so that whole chunks are hashed level by level (with a tile level inside them) and
# the partial tail leaf by leaf.
_PROCESSES = {"n": 1}


@pytest.fixture(params=["one process", "ranges"], autouse=True)
def verify_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    calls = {"ranges": 0}
    monkeypatch.setattr(verify_ranges, "CHUNK_LEVEL", 5)
    if request.param == "ranges":
        run = verify_ranges.run

        def counted(*args: Any, **kwargs: Any) -> list[verify_ranges.RangeResult]:
            calls["ranges"] += 1
            return run(*args, **kwargs)

        monkeypatch.setattr(verify_ranges, "RANGE_LEVEL", 5)
        monkeypatch.setattr(verify_ranges, "run", counted)
        monkeypatch.setitem(_PROCESSES, "n", 2)
    else:
        monkeypatch.setitem(_PROCESSES, "n", 1)
    yield str(request.param)
    # The mode must really have been used: ranges on workers, or never.
    assert (calls["ranges"] > 0) == (request.param == "ranges")


def _verify(rt: Runtime, external: tuple[str, ...] = ()) -> StreamReport:
    with rt.session() as s:
        (report,) = verify_all(s, rt.signer.verifier, AUDIT, external, parallel=_PROCESSES["n"])
    return report


def _as_owner(rt: Runtime, *statements: str, **params: object) -> None:
    with rt.engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        for table in ("ledger_record", "ledger_node", "ledger_checkpoint", "ledger_stream"):
            if pg:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        if not pg:
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'")).scalars().all()
            for name in names:
                conn.execute(text(f"DROP TRIGGER {name}"))
        for stmt in statements:
            conn.execute(text(stmt), params)
        if pg:
            for table in ("ledger_record", "ledger_node", "ledger_checkpoint", "ledger_stream"):
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


@pytest.fixture
def filled(rt: Runtime) -> Runtime:
    _fill(rt)
    _checkpoint(rt)
    report = _verify(rt)
    assert report.ok, report.problems
    assert report.records == N
    assert report.checkpoints == 1
    return rt


def test_database_refuses_update_and_delete(filled: Runtime) -> None:
    for stmt in (
        "UPDATE ledger_record SET action = 'x' WHERE seq = 3",
        "DELETE FROM ledger_record WHERE seq = 3",
        "DELETE FROM ledger_node",
        "UPDATE ledger_checkpoint SET size = 1",
        "UPDATE ledger_stream SET size = 1",
        "DELETE FROM ledger_stream",
    ):
        with pytest.raises(DBAPIError, match=r"append-only|cannot"), filled.engine.begin() as conn:
            conn.execute(text(stmt))
    assert _verify(filled).ok


def test_changed_payload(filled: Runtime) -> None:
    _as_owner(filled, "UPDATE ledger_record SET payload = :p WHERE seq = 37", p=b'{"action":"forged"}')
    report = _verify(filled)
    assert [(p.index, p.kind) for p in report.problems] == [(37, "changed")]


def test_changed_payload_with_matching_leaf_hash(filled: Runtime) -> None:
    forged = b'{"action":"forged"}'
    _as_owner(filled, "UPDATE ledger_record SET payload = :p, leaf_hash = :h WHERE seq = 37", p=forged, h=_leaf(forged))
    (problem,) = _verify(filled).problems
    assert problem.kind == "subtree"
    assert problem.index is not None
    assert problem.index <= 37 < problem.index + 16


def test_deleted_record(filled: Runtime) -> None:
    _as_owner(filled, "DELETE FROM ledger_record WHERE seq = 50")
    assert [(p.index, p.kind) for p in _verify(filled).problems] == [(50, "missing")]


def test_inserted_record(filled: Runtime) -> None:
    forged = b'{"action":"inserted"}'
    _as_owner(
        filled,
        "UPDATE ledger_record SET seq = seq + 1000000 WHERE seq >= 20",
        "UPDATE ledger_record SET seq = seq - 999999 WHERE seq >= 1000000",
        "INSERT INTO ledger_record (stream_id, seq, recorded_at, payload, leaf_hash, action, object_type, object_id) "
        "SELECT stream_id, 20, recorded_at, :p, :h, 'x', '', '' FROM ledger_record WHERE seq = 19",
        p=forged,
        h=_leaf(forged),
    )
    (problem,) = _verify(filled).problems
    assert problem.kind == "subtree"
    assert problem.index == 16  # the tile holding record 20


def test_two_records_swapped(filled: Runtime) -> None:
    _as_owner(
        filled,
        "UPDATE ledger_record SET seq = -1 WHERE seq = 10",
        "UPDATE ledger_record SET seq = 10 WHERE seq = 11",
        "UPDATE ledger_record SET seq = 11 WHERE seq = -1",
    )
    (problem,) = _verify(filled).problems
    assert (problem.kind, problem.index) == ("subtree", 0)


def test_truncated_tail(filled: Runtime) -> None:
    _as_owner(filled, "DELETE FROM ledger_record WHERE seq >= 90")
    assert [(p.index, p.kind) for p in _verify(filled).problems] == [(90, "truncated")]


def test_truncated_tail_with_head_rewound(filled: Runtime) -> None:
    """Also rewinding the stream's size: the signed checkpoint still says 100."""
    with filled.session() as s:
        stream = s.scalars(select(LedgerStream)).one()
        size, frontier = 90, _frontier_at(filled, 90)
    _as_owner(
        filled,
        "DELETE FROM ledger_record WHERE seq >= 90",
        "DELETE FROM ledger_node WHERE level = 4 AND idx >= 5",
        "UPDATE ledger_stream SET size = :n, frontier = :f WHERE id = :i",
        n=size,
        f=frontier,
        i=stream.id,
    )
    assert [(p.index, p.kind) for p in _verify(filled).problems] == [(90, "rollback")]


def _frontier_at(rt: Runtime, size: int) -> bytes:
    from portcullis.ledger.store import StoredTree

    with rt.session() as s:
        return StoredTree(s, get_stream(s, AUDIT), size).frontier().to_bytes()


def test_checkpoint_signed_by_another_key(filled: Runtime) -> None:
    impostor = Signer(filled.signer.name, Ed25519PrivateKey.generate())
    with filled.session() as s:
        row = s.scalars(select(LedgerCheckpoint)).one()
        forged = impostor.sign(row.note.split("\n\n")[0] + "\n")
    _as_owner(filled, "UPDATE ledger_checkpoint SET note = :n", n=forged)
    kinds = [(p.index, p.kind) for p in _verify(filled).problems]
    assert kinds == [(None, "checkpoint-signature")]


def test_restored_from_an_older_copy(filled: Runtime) -> None:
    """An auditor kept a checkpoint exported after more records were added;
    the database is then put back to the state before those records."""
    with filled.session() as s:
        stream = s.scalars(select(LedgerStream)).one()
        old_size, old_frontier, sid = stream.size, stream.frontier, stream.id
    _fill(filled, 40)
    exported = _checkpoint(filled)
    assert _verify(filled, (exported,)).ok
    _as_owner(
        filled,
        "DELETE FROM ledger_record WHERE seq >= :n",
        "DELETE FROM ledger_node WHERE (level = 4 AND idx >= :n / 16) OR (level = 8 AND idx >= :n / 256)",
        "DELETE FROM ledger_checkpoint WHERE size > :n",
        "UPDATE ledger_stream SET size = :n, frontier = :f, checkpoint_size = :n WHERE id = :i",
        n=old_size,
        f=old_frontier,
        i=sid,
    )
    assert _verify(filled).ok  # the copy is consistent in itself...
    problems = _verify(filled, (exported,)).problems
    assert [(p.index, p.kind) for p in problems] == [(old_size, "rollback")]  # ...but not with what was exported


def test_changed_tail_record_is_caught_by_the_checkpoint(rt: Runtime) -> None:
    """A record in the last, unfinished tile has no stored tile node above it: the checkpoint catches it."""
    _fill(rt, 50)
    _checkpoint(rt)
    _fill(rt, 50)
    _checkpoint(rt)
    assert _verify(rt).ok
    forged = b'{"action":"forged"}'
    _as_owner(rt, "UPDATE ledger_record SET payload = :p, leaf_hash = :h WHERE seq = 98", p=forged, h=_leaf(forged))
    assert [(p.index, p.kind) for p in _verify(rt).problems] == [(50, "checkpoint-mismatch")]

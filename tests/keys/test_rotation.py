"""A key past its crypto-period is a finding for its owner, closed once the key is rotated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portcullis.access.models import Finding
from portcullis.core.clock import FrozenClock
from portcullis.core.runtime import Runtime
from portcullis.keys.register import rotate
from portcullis.keys.rotation import rotation_pass
from portcullis.keys.service import backends
from portcullis.scheduler import run_once
from tests.keys.world import SYSTEM, KeyWorld, build_key_world


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def test_overdue_rotation_opens_and_closes_a_finding(w: KeyWorld) -> None:
    w.register(crypto_period_days=30)
    clock = w.rt.clock
    assert isinstance(clock, FrozenClock)
    with w.rt.work(SYSTEM) as ctx:
        assert rotation_pass(ctx) == {"overdue": 0, "opened": 0, "resolved": 0}
    clock.advance(timedelta(days=31))
    assert run_once(w.rt)["keys.rotation_due"] == {"ok": True, "result": {"overdue": 1, "opened": 1, "resolved": 0}}
    with w.rt.session() as s:
        [f] = s.scalars(select(Finding).where(Finding.kind == "key_rotation_overdue")).all()
        assert (f.owner_id, f.status) == (w.people["sofia"], "open")
        assert "payments-signing" in f.detail
    with w.rt.work(SYSTEM) as ctx:
        assert rotation_pass(ctx)["opened"] == 0  # once, not every day
    with w.rt.work(w.p("sofia")) as ctx:
        rotate(ctx, "payments-signing", backends(w.rt)["software"], "yearly")
    with w.rt.work(SYSTEM) as ctx:
        assert rotation_pass(ctx) == {"overdue": 0, "opened": 0, "resolved": 1}

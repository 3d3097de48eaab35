"""NIST SP 800-57 states: every allowed transition dated and recorded, every other refused with its reason."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy import select

from portcullis.core.clock import FrozenClock
from portcullis.core.errors import Conflict, PermissionDenied, ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.keys import lifecycle
from portcullis.keys.models import CryptoKey, KeyState, KeyTransition
from portcullis.keys.register import change_state, key_by_name
from portcullis.ledger.models import LedgerRecord
from tests.keys.world import KeyWorld, build_key_world

S = KeyState
# Written from NIST SP 800-57 Part 1 Rev. 5, section 7 (figure 6), not from the code under test.
NIST = {
    (S.PRE_ACTIVATION, S.ACTIVE),
    (S.PRE_ACTIVATION, S.COMPROMISED),
    (S.PRE_ACTIVATION, S.DESTROYED),
    (S.ACTIVE, S.SUSPENDED),
    (S.ACTIVE, S.DEACTIVATED),
    (S.ACTIVE, S.COMPROMISED),
    (S.SUSPENDED, S.ACTIVE),
    (S.SUSPENDED, S.DEACTIVATED),
    (S.SUSPENDED, S.COMPROMISED),
    (S.DEACTIVATED, S.COMPROMISED),
    (S.DEACTIVATED, S.DESTROYED),
    (S.COMPROMISED, S.DESTROYED),
}


@pytest.mark.parametrize(("current", "target"), list(product(S, S)), ids=lambda s: s.value)
def test_the_transition_table_is_nists(current: KeyState, target: KeyState) -> None:
    why = lifecycle.refusal(current, target)
    if (current, target) in NIST:
        assert why is None
    else:
        assert why


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _history(w: KeyWorld, name: str) -> list[tuple[str, str, str]]:
    with w.rt.session() as s:
        kid = s.scalar(select(CryptoKey.id).where(CryptoKey.key == name))
        rows = s.scalars(select(KeyTransition).where(KeyTransition.key_id == kid).order_by(KeyTransition.id))
        return [(t.from_state, t.to_state, t.reason) for t in rows]


def test_a_keys_life_is_dated_and_recorded(w: KeyWorld) -> None:
    w.register(activate=False)
    sofia = w.p("sofia")
    steps = [
        (S.ACTIVE, "in service"),
        (S.SUSPENDED, "investigating"),
        (S.ACTIVE, "all clear"),
        (S.COMPROMISED, "found on a laptop"),
    ]
    for target, reason in steps:
        clock = w.rt.clock
        assert isinstance(clock, FrozenClock)
        clock.advance(timedelta(hours=1))
        with w.rt.work(sofia) as ctx:
            change_state(ctx, "payments-signing", target, reason)
    assert _history(w, "payments-signing") == [
        ("pre_activation", "active", "in service"),
        ("active", "suspended", "investigating"),
        ("suspended", "active", "all clear"),
        ("active", "compromised", "found on a laptop"),
    ]
    with w.rt.work(sofia) as ctx:
        k = key_by_name(ctx, "payments-signing")
        assert k.compromised_at == w.rt.clock.now()
        assert k.activated_at is not None
        assert k.activated_at < k.compromised_at
        with pytest.raises(Conflict) as exc:
            change_state(ctx, "payments-signing", S.ACTIVE, "back please")
        assert "never trusted again" in exc.value.detail
    with w.rt.session() as s:
        actions = list(s.scalars(select(LedgerRecord.action).where(LedgerRecord.object_type == "crypto_key")))
    assert actions.count("key.active") == 2
    assert "key.compromised" in actions


def test_refusals(w: KeyWorld) -> None:
    w.register()
    with w.rt.work(w.p("sofia")) as ctx:
        with pytest.raises(Conflict, match="two custodians"):
            change_state(ctx, "payments-signing", S.DESTROYED, "gone")
        with pytest.raises(ValidationFailed):
            change_state(ctx, "payments-signing", S.SUSPENDED, "  ")
    with w.rt.work(w.p("aude")) as ctx, pytest.raises(PermissionDenied, match=r"may not keys\.admin"):
        change_state(ctx, "payments-signing", S.SUSPENDED, "auditors look, they do not touch")


def test_a_compromise_found_after_destruction_is_recorded(w: KeyWorld) -> None:
    w.register(activate=False)
    with w.rt.work(w.p("sofia")) as ctx:
        k = key_by_name(ctx, "payments-signing")
        lifecycle.transition(ctx, k, S.DESTROYED, "never used")
        found = ctx.now() - timedelta(days=3)
        lifecycle.record_compromise_after_destruction(ctx, k, found, "its backup tape was stolen")
        assert (k.state, k.compromised_at) == ("destroyed", found)
        live = key_by_name(ctx, "payments-signing")
    w.register(key="other")
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="through its state"):
        lifecycle.record_compromise_after_destruction(ctx, key_by_name(ctx, "other"), ctx.now(), "x")
    assert live.destroyed_at is not None

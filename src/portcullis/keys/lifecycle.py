"""Key states and the transitions NIST SP 800-57 Part 1 (section 7) allows between them.

Every transition is dated, kept in key_transition and recorded in the ledger;
one that is not allowed is refused with the reason. Destruction itself goes
through dual control (dual.py), which calls `transition` once custodians agreed.
"""

from __future__ import annotations

from datetime import datetime

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, ValidationFailed
from portcullis.keys.models import CryptoKey, KeyState, KeyTransition
from portcullis.ledger.service import record_change

S = KeyState
ALLOWED: dict[KeyState, frozenset[KeyState]] = {
    S.PRE_ACTIVATION: frozenset({S.ACTIVE, S.COMPROMISED, S.DESTROYED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.DEACTIVATED, S.COMPROMISED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.DEACTIVATED, S.COMPROMISED}),
    S.DEACTIVATED: frozenset({S.COMPROMISED, S.DESTROYED}),
    S.COMPROMISED: frozenset({S.DESTROYED}),
    S.DESTROYED: frozenset(),
}
# Why a transition is refused, in the words an operator needs.
_WHY = {
    (S.ACTIVE, S.DESTROYED): "an active key is deactivated first, so nothing still relies on it when it goes",
    (S.SUSPENDED, S.DESTROYED): "a suspended key is deactivated first",
    (S.DEACTIVATED, S.ACTIVE): "a deactivated key is never used again to protect; generate or rotate instead",
    (S.COMPROMISED, S.ACTIVE): "a compromised key is never trusted again; replace it",
    (S.COMPROMISED, S.DEACTIVATED): "a compromised key stays compromised until it is destroyed",
    (S.PRE_ACTIVATION, S.SUSPENDED): "a key that was never active cannot be suspended",
    (S.PRE_ACTIVATION, S.DEACTIVATED): "a key that was never active is destroyed, not deactivated",
}


def refusal(current: KeyState, target: KeyState) -> str | None:
    """None if the transition is allowed, else why not."""
    if target in ALLOWED[current]:
        return None
    if current is S.DESTROYED:
        return "a destroyed key has no further states (its compromise can still be recorded)"
    if current is target:
        return f"the key is already {target.value}"
    return _WHY.get((current, target), f"NIST SP 800-57 allows no transition from {current.value} to {target.value}")


def transition(ctx: Context, key: CryptoKey, target: KeyState, reason: str, at: datetime | None = None) -> None:
    """Move `key` to `target` (the caller checked permissions and dual control), dated and recorded."""
    current = KeyState(key.state)
    why = refusal(current, target)
    if why is not None:
        raise Conflict(f"Key {key.key!r} cannot go from {current.value} to {target.value}: {why}")
    if not reason.strip():
        raise ValidationFailed("A key's state changes with a reason", [FieldError("reason", "is required")])
    when = at or ctx.now()
    before = {"state": key.state}
    key.state = target.value
    if target is S.ACTIVE and key.activated_at is None:
        key.activated_at = when
    if target is S.DEACTIVATED:
        key.deactivated_at = when
    if target is S.COMPROMISED:
        key.compromised_at = when
    if target is S.DESTROYED:
        key.destroyed_at = when
    key.updated_at = ctx.now()
    ctx.session.add(
        KeyTransition(
            key_id=key.id,
            from_state=current.value,
            to_state=target.value,
            at=when,
            reason=reason.strip(),
            actor=ctx.principal.name,
        )
    )
    record_change(ctx, f"key.{target.value}", "crypto_key", key.id, before, {"state": key.state}, reason=reason.strip())


def record_compromise_after_destruction(ctx: Context, key: CryptoKey, at: datetime, reason: str) -> None:
    """A destroyed key later found to have been compromised keeps that date (NIST "destroyed compromised")."""
    if KeyState(key.state) is not S.DESTROYED:
        raise Conflict(f"Key {key.key!r} is {key.state}: compromise it through its state instead")
    before = {"compromised_at": key.compromised_at}
    key.compromised_at = at
    key.updated_at = ctx.now()
    record_change(ctx, "key.compromise_recorded", "crypto_key", key.id, before, {"compromised_at": at}, reason=reason)

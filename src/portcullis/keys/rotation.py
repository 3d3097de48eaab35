"""Keys past their crypto-period (§27 renewing): a finding for each active key overdue for rotation.

Run daily by the scheduler. The finding goes to the key's owner, else the security
officer, and closes by itself once the key is rotated (or no longer active).
"""

from __future__ import annotations

from sqlalchemy import select

from portcullis.access.findings import HIGH, MEDIUM, FindingSpec, open_keys, open_many, resolve_missing
from portcullis.access.grants import security_officer
from portcullis.core.context import Context
from portcullis.keys.models import CryptoKey, KeyState

PREFIX = "key_rotation_overdue:"


def rotation_pass(ctx: Context) -> dict[str, int]:
    now = ctx.now()
    overdue = list(
        ctx.session.scalars(
            select(CryptoKey).where(
                CryptoKey.state == KeyState.ACTIVE.value, CryptoKey.rotate_by.is_not(None), CryptoKey.rotate_by < now
            )
        )
    )
    fallback = security_officer(ctx.session)
    specs = [
        FindingSpec(
            key=f"{PREFIX}key:{k.id}",
            kind="key_rotation_overdue",
            severity=HIGH if k.critical else MEDIUM,
            detail=f"key {k.key} was due for rotation on {k.rotate_by.date().isoformat() if k.rotate_by else ''} "
            f"(crypto-period {k.crypto_period_days} days)",
            owner_id=k.owner_id or fallback,
            due_days=7,
        )
        for k in overdue
    ]
    opened = open_many(ctx, specs, set(open_keys(ctx.session, [PREFIX])))
    resolved = resolve_missing(ctx, PREFIX, {s.key for s in specs})
    return {"overdue": len(specs), "opened": opened, "resolved": resolved}

"""The master key held by custodians as SLIP-39 shares (§27; DESIGN: master-key operations need two custodians).

`split_master` turns this installation's master key into shares, one per
custodian, in a recorded ceremony; after it, the operator switches
PORTCULLIS_MASTER_KEY_SOURCE to "shares" and removes the key file. From then on
each start is sealed until custodians offer enough shares (`offer_share`, from
the API or the web), each one checked as it comes and forgotten once the master
key is rebuilt and checked against the installation's check value.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from portcullis.access.grants import linked_person
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, PermissionDenied, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.core.runtime import Runtime
from portcullis.keys import shares
from portcullis.keys.keyring import Keyring
from portcullis.keys.models import Ceremony
from portcullis.ledger.service import record_change

_lock = threading.Lock()


def split_master(
    ctx: Context, ring: Keyring, custodians: list[int], threshold: int, present: list[int], approvers: list[int]
) -> list[str]:
    """The master key as `len(custodians)` shares, `threshold` of which rebuild it; shown once, kept nowhere."""
    ctx.require(Permission.KEYS_ADMIN)
    errors: list[FieldError] = []
    if len(set(custodians)) != len(custodians) or len(custodians) < 2:
        errors.append(FieldError("custodians", "at least two distinct custodians"))
    if not 2 <= threshold <= len(custodians):
        errors.append(FieldError("threshold", f"between 2 and {len(custodians)}: one custodian alone never suffices"))
    if len(set(present)) < 2:
        errors.append(FieldError("present", "a master-key ceremony has at least two witnesses"))
    if len(set(approvers)) < 2:
        errors.append(FieldError("approvers", "a master-key ceremony is approved by two people"))
    if errors:
        raise ValidationFailed("The master-key ceremony cannot go ahead", errors)
    mnemonics = shares.split(ring.master, threshold, len(custodians))
    c = Ceremony(
        kind="master_key",
        held_at=ctx.now(),
        present=sorted(set(present)),
        approvers=sorted(set(approvers)),
        notes=f"master key split into {len(custodians)} SLIP-39 shares, {threshold} needed",
    )
    ctx.session.add(c)
    ctx.session.flush()
    record_change(
        ctx,
        "key.master_split",
        "key_ceremony",
        c.id,
        None,
        {"custodians": custodians, "threshold": threshold, "present": c.present, "approvers": c.approvers},
    )
    return mnemonics


def offer_share(ctx: Context, rt: Runtime, ring: Keyring, mnemonic: str) -> dict[str, Any]:
    """One custodian's share towards unsealing; the last one needed unseals the key service."""
    ctx.require(Permission.KEYS_CUSTODY)
    person = linked_person(ctx)
    if person is None:
        raise PermissionDenied(f"{ctx.principal.name} is not linked to a person, so cannot hold a share")
    if not ring.sealed:
        raise Conflict("The key service is already unsealed")
    with _lock:
        if rt._unseal is None:
            rt._unseal = {"collector": shares.ShareCollector(), "by": []}
        held: dict[str, Any] = rt._unseal
        if person.id in held["by"]:
            raise Conflict("This custodian has already offered a share: another custodian must")
        try:
            remaining = held["collector"].add(mnemonic)
        except shares.ShareError as e:
            raise ValidationFailed(f"The share is not usable: {e}") from None
        held["by"].append(person.id)
        if remaining:
            record_change(ctx, "key.unseal_share", "keyring", "master", by=person.id, remaining=remaining)
            return {"sealed": True, "remaining": remaining}
        by = list(held["by"])
        try:
            secret = held["collector"].secret()
        except shares.ShareError as e:
            raise ValidationFailed(f"The shares do not combine: {e}") from None
        finally:
            held["collector"].clear()
            held["by"].clear()
        ring.unseal(ctx.session, secret, "shares")
        record_change(ctx, "key.master_unsealed", "keyring", "master", by=by)
        return {"sealed": False, "remaining": 0}


def generate_master(
    ctx: Context, ring: Keyring, custodians: list[int], threshold: int, present: list[int], approvers: list[int]
) -> list[str]:
    """A fresh installation's master key, generated in a ceremony straight into custodians' shares: it is never
    written anywhere, and this process holds it until it stops."""
    from portcullis.keys.keyring import MASTER_BYTES, MasterKeyRecord

    ctx.require(Permission.KEYS_ADMIN)
    if ctx.session.get(MasterKeyRecord, 1) is not None:
        raise Conflict("This installation has its master key already; split it with `portcullis keys master-split`")
    ring.unseal(ctx.session, secrets.token_bytes(MASTER_BYTES), "shares")
    mnemonics = split_master(ctx, ring, custodians, threshold, present, approvers)
    record_change(ctx, "key.master_generated", "keyring", "master", custodians=custodians, threshold=threshold)
    return mnemonics

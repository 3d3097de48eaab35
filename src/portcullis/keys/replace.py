"""Replacing a lost, compromised or damaged key (§28): one operation, then a task per dependant.

The old key stops protecting at once (compromised, or deactivated when lost or
damaged); its successor is registered with the same purpose, custodians, policy
and assets, linked to it; and everything that relied on the old key gets a task:
each ICT asset to move to the new key, the data each version encrypted (by
version, from the use counts) to re-encrypt or retire, what its signatures
vouched for to re-sign, and its public key to replace wherever it was pinned.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Asset
from portcullis.keys import lifecycle
from portcullis.keys.backends.base import Algorithm, Backend
from portcullis.keys.models import (
    CryptoKey,
    Custody,
    KeyAsset,
    KeyCustodian,
    KeyState,
    KeyVersion,
    Replacement,
    ReplacementTask,
)
from portcullis.keys.register import key_by_name, key_view
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import Change, decode, record_change, record_changes

CAUSES = ("lost", "compromised", "damaged")


def _uses_by_version(ctx: Context, key: CryptoKey) -> dict[tuple[int, str], int]:
    """(version id, operation) -> count, from the key's key.used records."""
    out: dict[tuple[int, str], int] = {}
    for r in ctx.session.scalars(
        select(LedgerRecord).where(
            LedgerRecord.object_type == "crypto_key",
            LedgerRecord.object_id == str(key.id),
            LedgerRecord.action == "key.used",
        )
    ):
        body = decode(r)
        k = (int(body["version_id"]), str(body["operation"]))
        out[k] = out.get(k, 0) + int(body["count"])
    return out


def replace(
    ctx: Context, name: str, cause: str, reason: str, backend: Backend | None, successor: str | None = None
) -> Replacement:
    ctx.require(Permission.KEYS_ADMIN)
    if cause not in CAUSES:
        raise ValidationFailed("Why the key is replaced", [FieldError("cause", f"one of {', '.join(CAUSES)}")])
    if not reason.strip():
        raise ValidationFailed("A replacement needs its reason", [FieldError("reason", "is required")])
    s = ctx.session
    old = key_by_name(ctx, name)
    if old.state in (KeyState.DESTROYED.value, KeyState.PRE_ACTIVATION.value):
        raise Conflict(f"Key {name!r} is {old.state}: nothing relies on it to replace")
    if s.scalar(select(func.count()).select_from(CryptoKey).where(CryptoKey.predecessor_id == old.id)):
        raise Conflict(f"Key {name!r} has already been replaced")
    internal = old.custody == Custody.INTERNAL.value
    if internal and backend is None:
        raise Conflict(f"The {old.backend} backend is not available here to generate the successor")
    # The old key protects nothing more from now on.
    target = KeyState.COMPROMISED if cause == "compromised" else KeyState.DEACTIVATED
    if old.state != target.value and lifecycle.refusal(KeyState(old.state), target) is None:
        lifecycle.transition(ctx, old, target, f"replaced ({cause}): {reason.strip()}")
    new_name = successor or _next_name(ctx, old.key)
    now = ctx.now()
    new = CryptoKey(
        key=new_name,
        name=old.name,
        purpose=old.purpose,
        algorithm=old.algorithm,
        size_bits=old.size_bits,
        custody=old.custody,
        backend=old.backend,
        owner_id=old.owner_id,
        device_asset_id=old.device_asset_id,
        location=old.location,
        critical=old.critical,
        crypto_period_days=old.crypto_period_days,
        policy=old.policy,
        extractable=old.extractable,
        predecessor_id=old.id,
        created_at=now,
        updated_at=now,
    )
    s.add(new)
    s.flush()
    custodians = list(s.scalars(select(KeyCustodian.person_id).where(KeyCustodian.key_id == old.id)))
    assets = list(s.scalars(select(KeyAsset.asset_id).where(KeyAsset.key_id == old.id)))
    s.add_all(KeyCustodian(key_id=new.id, person_id=p) for p in custodians)
    s.add_all(KeyAsset(key_id=new.id, asset_id=a) for a in assets)
    if internal and backend is not None:
        made = backend.generate(Algorithm(old.algorithm), new_name, extractable=old.extractable)
        s.add(KeyVersion(key_id=new.id, version=1, ref=made.ref, public_key=made.public_key, created_at=now))
        new.protection = made.protection.as_dict()
    s.flush()
    record_change(ctx, "key.registered", "crypto_key", new.id, None, key_view(new), predecessor=old.key)
    if internal:
        lifecycle.transition(ctx, new, KeyState.ACTIVE, f"successor of {old.key}")
    rep = Replacement(old_key_id=old.id, new_key_id=new.id, cause=cause, reason=reason.strip(), created_at=now)
    s.add(rep)
    s.flush()
    tasks = _tasks(ctx, old, new, assets, internal)
    for t in tasks:
        t.replacement_id = rep.id
    s.add_all(tasks)
    s.flush()
    record_change(ctx, "key.replaced", "key_replacement", rep.id, None, replacement_view(ctx, rep))
    return rep


def _next_name(ctx: Context, base: str) -> str:
    n = 2
    while ctx.session.scalar(select(CryptoKey.id).where(CryptoKey.key == f"{base}-r{n}")) is not None:
        n += 1
    return f"{base}-r{n}"


def _tasks(ctx: Context, old: CryptoKey, new: CryptoKey, assets: list[int], internal: bool) -> list[ReplacementTask]:
    s = ctx.session
    tasks = []
    names = {a.id: a for a in s.scalars(select(Asset).where(Asset.id.in_(assets)))} if assets else {}
    for aid in assets:
        a = names.get(aid)
        tasks.append(
            ReplacementTask(
                kind="asset",
                ref=f"asset:{aid}",
                description=f"Move {a.name if a else aid} ({a.external_id if a else ''}) from {old.key} to {new.key}",
            )
        )
    # Access to what the key protected: whoever holds it is reviewed, as the key may have let others in.
    for aid, count in sorted(_active_grants_by_asset(ctx, assets).items()):
        a = names.get(aid)
        tasks.append(
            ReplacementTask(
                kind="grants",
                ref=f"asset:{aid}",
                description=f"Review the {count} active grant(s) on {a.name if a else aid}: "
                f"{old.key} protected it and was {old.state}",
            )
        )
    if internal:
        versions = {v.id: v.version for v in s.scalars(select(KeyVersion).where(KeyVersion.key_id == old.id))}
        for (version_id, operation), n in sorted(_uses_by_version(ctx, old).items()):
            version = versions.get(version_id, "?")
            if operation == "encrypt":
                tasks.append(
                    ReplacementTask(
                        kind="ciphertexts",
                        ref=f"version:{version}",
                        description=f"Re-encrypt under {new.key}, or retire, the {n} "
                        f"ciphertext(s) made with {old.key} version {version}",
                    )
                )
            if operation == "wrap":
                tasks.append(
                    ReplacementTask(
                        kind="wrapped_keys",
                        ref=f"version:{version}",
                        description=f"Re-wrap under {new.key} the {n} key(s) wrapped with {old.key} version {version}",
                    )
                )
            if operation == "sign":
                tasks.append(
                    ReplacementTask(
                        kind="signatures",
                        ref=f"version:{version}",
                        description=f"Re-sign with {new.key} what the {n} signature(s) of "
                        f"{old.key} version {version} vouch for",
                    )
                )
        if any(v is not None for v in s.scalars(select(KeyVersion.public_key).where(KeyVersion.key_id == old.id))):
            tasks.append(
                ReplacementTask(
                    kind="public_key",
                    ref=f"key:{old.id}",
                    description=f"Replace {old.key}'s public key wherever it is pinned or trusted by {new.key}'s",
                )
            )
    else:
        where = old.location or "its device"
        tasks.append(
            ReplacementTask(
                kind="external",
                ref=f"key:{new.id}",
                description=f"Generate {new.key} where {old.key} lived ({where}) and activate it in the register",
            )
        )
    return tasks


def _active_grants_by_asset(ctx: Context, assets: list[int]) -> dict[int, int]:
    if not assets:
        return {}
    from portcullis.access.models import Entitlement, Grant, GrantStatus

    rows = ctx.session.execute(
        select(Entitlement.asset_id, func.count(Grant.id))
        .join(Grant, Grant.entitlement_id == Entitlement.id)
        .where(Entitlement.asset_id.in_(assets), Grant.status == GrantStatus.ACTIVE.value)
        .group_by(Entitlement.asset_id)
    )
    return {int(aid): int(n) for aid, n in rows if aid is not None}


def replacement_view(ctx: Context, rep: Replacement) -> dict[str, Any]:
    tasks = list(
        ctx.session.scalars(
            select(ReplacementTask).where(ReplacementTask.replacement_id == rep.id).order_by(ReplacementTask.id)
        )
    )
    keys = {
        k.id: k.key
        for k in ctx.session.scalars(select(CryptoKey).where(CryptoKey.id.in_([rep.old_key_id, rep.new_key_id])))
    }
    done = sum(1 for t in tasks if t.status == "done")
    return {
        "id": rep.id,
        "old_key": keys.get(rep.old_key_id),
        "new_key": keys.get(rep.new_key_id),
        "cause": rep.cause,
        "reason": rep.reason,
        "created_at": rep.created_at,
        "completed_at": rep.completed_at,
        "progress": f"{done} of {len(tasks)}",
        "tasks": [
            {
                "id": t.id,
                "kind": t.kind,
                "ref": t.ref,
                "description": t.description,
                "status": t.status,
                "done_at": t.done_at,
            }
            for t in tasks
        ],
    }


def complete_task(ctx: Context, task_id: int, note: str) -> Replacement:
    ctx.require(Permission.KEYS_ADMIN)
    t = ctx.session.get(ReplacementTask, task_id)
    if t is None:
        raise NotFound(f"No replacement task {task_id}")
    if t.status == "done":
        raise Conflict(f"Task {task_id} is already done")
    rep = ctx.session.get(Replacement, t.replacement_id)
    assert rep is not None
    now = ctx.now()
    t.status, t.done_at = "done", now
    ctx.session.flush()
    changes = [Change("key.replacement_task_done", "key_replacement", rep.id, extra={"task": t.id, "note": note})]
    left = ctx.session.scalar(
        select(func.count())
        .select_from(ReplacementTask)
        .where(ReplacementTask.replacement_id == rep.id, ReplacementTask.status != "done")
    )
    if not left:
        rep.completed_at = now
        changes.append(Change("key.replacement_completed", "key_replacement", rep.id))
    record_changes(ctx, changes)
    return rep


def list_replacements(ctx: Context) -> list[Replacement]:
    ctx.require(Permission.KEYS_READ)
    return list(ctx.session.scalars(select(Replacement).order_by(Replacement.id.desc())))

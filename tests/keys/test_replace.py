"""Replacing a compromised key (§28): the successor, the link, a task for everything that relied on the old key."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portcullis.access.models import Entitlement, Grant
from portcullis.core.errors import Conflict
from portcullis.core.runtime import Runtime
from portcullis.inventory.models import Asset
from portcullis.keys import replace
from portcullis.keys.register import key_by_name
from portcullis.keys.service import backends
from tests.keys.world import SYSTEM, KeyWorld, build_key_world

POLICY = {op: ["system:tests"] for op in ("sign", "verify", "encrypt", "decrypt")}


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _grant_on_payments(w: KeyWorld) -> None:
    """Two people hold access to the payments gateway (set up directly: the access workflow is not under test)."""
    with w.rt.session() as s:
        asset = s.scalar(select(Asset.id).where(Asset.external_id == "A-PAY"))
        now = w.rt.clock.now()
        ent = Entitlement(key="pay-ops", name="Payments operations", asset_id=asset, created_at=now, updated_at=now)
        s.add(ent)
        s.flush()
        for person in ("carla", "cedric"):
            s.add(
                Grant(person_id=w.people[person], entitlement_id=ent.id, kind="standing", starts_at=now, created_at=now)
            )


def test_a_compromised_key_is_replaced_with_a_task_per_dependant(w: KeyWorld) -> None:
    w.register(key="vault", name="Vault", purpose="wallet backups", algorithm="aes-256", policy=POLICY)
    _grant_on_payments(w)
    with w.rt.work(SYSTEM) as ctx:
        old = [w.service.encrypt(ctx, "vault", f"secret {i}".encode()) for i in range(3)]
        w.service.flush(ctx)
    with w.rt.work(w.p("sofia")) as ctx:
        rep = replace.replace(ctx, "vault", "compromised", "key file found on a laptop", backends(w.rt)["software"])
        view = replace.replacement_view(ctx, rep)
        assert key_by_name(ctx, "vault").state == "compromised"
        successor = key_by_name(ctx, "vault-r2")
        assert (successor.state, successor.predecessor_id) == ("active", key_by_name(ctx, "vault").id)
    assert view["progress"] == "0 of 3"
    kinds = {t["kind"]: t["description"] for t in view["tasks"]}
    assert "A-PAY" in kinds["asset"]
    assert "the 2 active grant(s) on Payments gateway" in kinds["grants"]
    assert "the 3 ciphertext(s) made with vault version 1" in kinds["ciphertexts"]
    w.service.forget()
    with w.rt.work(SYSTEM) as ctx:
        with pytest.raises(Conflict, match="compromised: it may not encrypt"):
            w.service.encrypt(ctx, "vault", b"more")
        # The old key still decrypts, so the data can be moved to its successor.
        moved = [w.service.encrypt(ctx, "vault-r2", w.service.decrypt(ctx, "vault", c)) for c in old]
        assert w.service.decrypt(ctx, "vault-r2", moved[0]) == b"secret 0"
    with w.rt.work(w.p("sofia")) as ctx:
        for t in view["tasks"]:
            replace.complete_task(ctx, t["id"], "done")
        final = replace.replacement_view(ctx, replace.list_replacements(ctx)[0])
    assert final["progress"] == "3 of 3"
    assert final["completed_at"] is not None
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="already been replaced"):
        replace.replace(ctx, "vault", "compromised", "again", backends(w.rt)["software"])

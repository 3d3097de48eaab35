"""The key service: registration (with ceremonies for critical keys), use under state, version and policy,
counting, rotation, and destruction under dual control with its grace period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import select

from portcullis.core.clock import FrozenClock
from portcullis.core.errors import Conflict, PermissionDenied, ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.keys import dual
from portcullis.keys.models import Ceremony, CryptoKey, KeyState, KeyVersion
from portcullis.keys.register import change_state, key_by_name, rotate, set_min_decrypt_version
from portcullis.keys.service import backends
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from tests.keys.world import SYSTEM, KeyWorld, build_key_world, email


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _clock(w: KeyWorld) -> FrozenClock:
    clock = w.rt.clock
    assert isinstance(clock, FrozenClock)
    return clock


def test_a_signature_verifies_with_the_registered_public_key(w: KeyWorld) -> None:
    w.register()
    with w.rt.work(w.p("carla")) as ctx:
        version, signature = w.service.sign(ctx, "payments-signing", b"pay 10 BTC to bc1q...")
        assert w.service.verify(ctx, "payments-signing", b"pay 10 BTC to bc1q...", signature, version)
        assert not w.service.verify(ctx, "payments-signing", b"pay 99 BTC to bc1q...", signature, version)
        w.service.flush(ctx)
    with w.rt.session() as s:
        [v] = s.scalars(select(KeyVersion)).all()
        # Independent check: pyca/cryptography with the stored public key.
        public = load_der_public_key(v.public_key or b"")
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, b"pay 10 BTC to bc1q...", ec.ECDSA(hashes.SHA256()))
        assert v.uses == 3
        used = [decode(r) for r in s.scalars(select(LedgerRecord).where(LedgerRecord.action == "key.used"))]
    assert sorted((u["operation"], u["count"]) for u in used) == [("sign", 1), ("verify", 2)]


def test_the_policy_decides_who_may_use_a_key(w: KeyWorld) -> None:
    cedric = w.users["cedric"].user.id
    w.register(policy={"sign": [f"user:{cedric}"]})
    with w.rt.work(w.p("carla")) as ctx, pytest.raises(PermissionDenied, match="usage policy"):
        w.service.sign(ctx, "payments-signing", b"x")  # a custodian, but not the one the policy names
    with w.rt.work(w.p("cedric")) as ctx:
        w.service.sign(ctx, "payments-signing", b"x")
        with pytest.raises(PermissionDenied, match="usage policy"):
            w.service.verify(ctx, "payments-signing", b"x", b"y", 1)  # nobody may verify: not in the policy
    # Administering keys is not using them.
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(PermissionDenied, match="may not use keys"):
        w.service.sign(ctx, "payments-signing", b"x")
    with w.rt.work(w.p("aude")) as ctx, pytest.raises(PermissionDenied):
        w.service.sign(ctx, "payments-signing", b"x")


def test_a_suspended_key_cannot_sign_or_encrypt(w: KeyWorld) -> None:
    w.register()
    w.register(
        key="vault",
        name="Vault",
        purpose="encrypts wallet backups",
        algorithm="aes-256",
        policy={"encrypt": ["role:key_custodian"], "decrypt": ["role:key_custodian"]},
    )
    with w.rt.work(w.p("carla")) as ctx:
        blob = w.service.encrypt(ctx, "vault", b"seed words", b"wallet-7")
    for name in ("payments-signing", "vault"):
        with w.rt.work(w.p("sofia")) as ctx:
            change_state(ctx, name, KeyState.SUSPENDED, "investigation")
    w.service.forget()
    with w.rt.work(w.p("carla")) as ctx:
        with pytest.raises(Conflict, match="suspended: it may not sign"):
            w.service.sign(ctx, "payments-signing", b"x")
        with pytest.raises(Conflict, match="suspended: it may not encrypt"):
            w.service.encrypt(ctx, "vault", b"more")
        # Processing what it protected still works: that is what suspension is for.
        assert w.service.decrypt(ctx, "vault", blob, b"wallet-7") == b"seed words"
        with pytest.raises(Conflict, match="Key 'vault'"):
            w.service.decrypt(ctx, "vault", blob, b"wallet-8")


def test_rotation_and_minimum_versions(w: KeyWorld) -> None:
    w.register(
        key="vault",
        name="Vault",
        purpose="encrypts wallet backups",
        algorithm="aes-256",
        policy={"encrypt": ["role:key_custodian"], "decrypt": ["role:key_custodian"]},
    )
    with w.rt.work(w.p("carla")) as ctx:
        old = w.service.encrypt(ctx, "vault", b"v1 secret")
    with w.rt.work(w.p("sofia")) as ctx:
        rotate(ctx, "vault", backends(w.rt)["software"], "yearly rotation")
    w.service.forget()
    with w.rt.work(w.p("carla")) as ctx:
        new = w.service.encrypt(ctx, "vault", b"v2 secret")
        assert old[4:8] == (1).to_bytes(4, "big")
        assert new[4:8] == (2).to_bytes(4, "big")
        assert w.service.decrypt(ctx, "vault", old) == b"v1 secret"
    with w.rt.work(w.p("sofia")) as ctx:
        with pytest.raises(ValidationFailed):
            set_min_decrypt_version(ctx, "vault", 3, "too far")
        set_min_decrypt_version(ctx, "vault", 2, "everything re-encrypted")
    w.service.forget()
    with w.rt.work(w.p("carla")) as ctx:
        assert w.service.decrypt(ctx, "vault", new) == b"v2 secret"
        with pytest.raises(Conflict, match="no longer be used"):
            w.service.decrypt(ctx, "vault", old)


def test_a_critical_key_needs_its_ceremony(w: KeyWorld) -> None:
    with pytest.raises(ValidationFailed) as exc:
        w.register(key="cold-wallet", critical=True)
    assert {e.field for e in exc.value.errors} == {"ceremony_present", "ceremony_approvers"}
    w.register(
        key="cold-wallet",
        critical=True,
        ceremony_present=[email("carla"), email("cedric")],
        ceremony_approvers=[email("sofia"), email("chloe")],
    )
    with w.rt.session() as s:
        [c] = s.scalars(select(Ceremony)).all()
        assert sorted(c.present) == sorted([w.people["carla"], w.people["cedric"]])
        assert sorted(c.approvers) == sorted([w.people["sofia"], w.people["chloe"]])


def _destroy_request(w: KeyWorld) -> int:
    with w.rt.work(w.p("sofia")) as ctx:
        change_state(ctx, "payments-signing", KeyState.DEACTIVATED, "payments moved to the new gateway")
        return dual.request(ctx, "payments-signing", "destroy", "end of life").id


def test_destruction_needs_two_custodians_and_a_grace_period(w: KeyWorld) -> None:
    w.register()
    op = _destroy_request(w)
    with w.rt.work(w.p("carla")) as ctx:
        dual.approve(ctx, op)
    with w.rt.work(w.p("carla")) as ctx, pytest.raises(Conflict, match="already approved"):
        dual.approve(ctx, op)
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="1 of 2 custodian approvals"):
        dual.execute_destroy(ctx, op, backends(w.rt))
    with w.rt.work(w.p("cedric")) as ctx:
        dual.approve(ctx, op)
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="grace period"):
        dual.execute_destroy(ctx, op, backends(w.rt))
    _clock(w).advance(dual.DESTROY_GRACE + timedelta(minutes=1))
    with w.rt.work(w.p("sofia")) as ctx:
        dual.execute_destroy(ctx, op, backends(w.rt))
    w.service.forget()
    with w.rt.session() as s:
        k = s.scalars(select(CryptoKey)).one()
        assert (k.state, k.destroyed_at is not None) == ("destroyed", True)
        assert [v.ref for v in s.scalars(select(KeyVersion))] == [None]  # material erased, metadata kept
    with w.rt.work(w.p("carla")) as ctx:
        for call in (
            lambda: w.service.sign(ctx, "payments-signing", b"x"),
            lambda: w.service.verify(ctx, "payments-signing", b"x", b"y", 1),
        ):
            with pytest.raises(Conflict, match="destroyed"):
                call()


def test_one_custodian_alone_cannot_destroy(w: KeyWorld) -> None:
    w.register(custodian_emails=[email("carla")])
    with w.rt.work(w.p("sofia")) as ctx:
        change_state(ctx, "payments-signing", KeyState.DEACTIVATED, "retired")
        with pytest.raises(Conflict, match="fewer than 2 custodians"):
            dual.request(ctx, "payments-signing", "destroy", "end of life")


def test_the_requester_and_non_custodians_cannot_approve(w: KeyWorld) -> None:
    w.register(custodian_emails=[email("carla"), email("cedric")])
    op = _destroy_request(w)
    with w.rt.work(w.p("chloe")) as ctx, pytest.raises(PermissionDenied, match="not a custodian"):
        dual.approve(ctx, op)
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(PermissionDenied):
        dual.approve(ctx, op)  # a key administrator, not a custodian: no keys.custody
    with w.rt.work(SYSTEM) as ctx, pytest.raises(PermissionDenied, match="not linked to a person"):
        dual.approve(ctx, op)


def test_a_destroyed_key_keeps_its_compromise_date(w: KeyWorld) -> None:
    w.register()
    with w.rt.work(w.p("sofia")) as ctx:
        change_state(ctx, "payments-signing", KeyState.COMPROMISED, "private key in a public repository")
        op = dual.request(ctx, "payments-signing", "destroy", "compromised").id
    for who in ("carla", "chloe"):
        with w.rt.work(w.p(who)) as ctx:
            dual.approve(ctx, op)
    _clock(w).advance(dual.DESTROY_GRACE)
    with w.rt.work(w.p("sofia")) as ctx:
        compromised_at = key_by_name(ctx, "payments-signing").compromised_at
        dual.execute_destroy(ctx, op, backends(w.rt))
        k = key_by_name(ctx, "payments-signing")
        assert k.state == "destroyed"
        assert k.compromised_at == compromised_at
        assert k.destroyed_at is not None
        assert compromised_at is not None
        assert compromised_at < k.destroyed_at


def test_wrap_unwrap_and_a_destroyed_key_does_nothing(w: KeyWorld) -> None:
    w.register(
        key="kek",
        name="KEK",
        purpose="wraps data keys",
        algorithm="aes-256",
        policy={op: ["role:key_custodian"] for op in ("wrap", "unwrap", "encrypt", "decrypt")},
    )
    data_key = bytes(range(32))
    with w.rt.work(w.p("carla")) as ctx:
        wrapped = w.service.wrap(ctx, "kek", data_key)
        blob = w.service.encrypt(ctx, "kek", b"x")
        assert data_key not in wrapped
        assert w.service.unwrap(ctx, "kek", wrapped) == data_key
        with pytest.raises(Conflict):
            w.service.unwrap(ctx, "kek", wrapped[:8] + bytes(len(wrapped) - 8))
    with w.rt.work(w.p("sofia")) as ctx:
        change_state(ctx, "kek", KeyState.DEACTIVATED, "retired")
        op = dual.request(ctx, "kek", "destroy", "end of life").id
    for who in ("carla", "cedric"):
        with w.rt.work(w.p(who)) as ctx:
            dual.approve(ctx, op)
    _clock(w).advance(dual.DESTROY_GRACE)
    with w.rt.work(w.p("sofia")) as ctx:
        dual.execute_destroy(ctx, op, backends(w.rt))
    w.service.forget()
    with w.rt.work(w.p("carla")) as ctx:
        calls: list[Callable[[], object]] = [
            lambda: w.service.wrap(ctx, "kek", data_key),
            lambda: w.service.unwrap(ctx, "kek", wrapped),
            lambda: w.service.encrypt(ctx, "kek", b"y"),
            lambda: w.service.decrypt(ctx, "kek", blob),
        ]
        for call in calls:
            with pytest.raises(Conflict, match="destroyed"):
                call()

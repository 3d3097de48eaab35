"""The master key as custodians' SLIP-39 shares: split in a ceremony, then each start sealed until enough
custodians offer theirs; a share of another master key is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from portcullis.core.errors import Conflict, ValidationFailed
from portcullis.core.migrate import upgrade
from portcullis.core.runtime import Runtime
from portcullis.keys import shares, unseal
from portcullis.keys.keyring import Sealed
from portcullis.keys.models import Ceremony
from portcullis.keys.service import key_service, keyring
from tests.keys.world import SYSTEM, KeyWorld, build_key_world

POLICY = {op: ["system:tests"] for op in ("encrypt", "decrypt")}


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _restart_sealed(w: KeyWorld) -> Runtime:
    settings = w.rt.settings.model_copy(update={"master_key_source": "shares"})
    return Runtime.build(settings, w.rt.clock)


def test_custodians_unseal_a_restarted_installation(w: KeyWorld) -> None:
    w.register(key="vault", name="Vault", purpose="wallet backups", algorithm="aes-256", policy=POLICY)
    with w.rt.work(SYSTEM) as ctx:
        blob = w.service.encrypt(ctx, "vault", b"seed")
    people = [w.people[n] for n in ("carla", "cedric", "chloe")]
    with w.rt.work(w.p("sofia")) as ctx:
        mnemonics = unseal.split_master(
            ctx, keyring(w.rt), people, 2, present=people[:2], approvers=[w.people["sofia"], w.people["aude"]]
        )
        assert ctx.session.query(Ceremony).filter_by(kind="master_key").count() == 1
    restarted = _restart_sealed(w)
    try:
        with restarted.work(SYSTEM) as ctx, pytest.raises(Sealed):
            key_service(restarted).decrypt(ctx, "vault", blob)
        ring = keyring(restarted)
        with restarted.work(w.p("carla")) as ctx:
            assert unseal.offer_share(ctx, restarted, ring, mnemonics[0]) == {"sealed": True, "remaining": 1}
        with restarted.work(w.p("carla")) as ctx, pytest.raises(Conflict, match="another custodian must"):
            unseal.offer_share(ctx, restarted, ring, mnemonics[1])
        with restarted.work(w.p("chloe")) as ctx:
            assert unseal.offer_share(ctx, restarted, ring, mnemonics[2]) == {"sealed": False, "remaining": 0}
        with restarted.work(SYSTEM) as ctx:
            assert key_service(restarted).decrypt(ctx, "vault", blob) == b"seed"
    finally:
        restarted.engine.dispose()


def test_shares_of_another_master_key_are_refused(w: KeyWorld) -> None:
    people = [w.people[n] for n in ("carla", "cedric")]
    foreign = shares.split(bytes(range(32)), 2, 2)
    restarted = _restart_sealed(w)
    try:
        with restarted.work(w.p("sofia")) as ctx:  # make the installation's check value exist
            keyring(w.rt)
        ring = keyring(restarted)
        with restarted.work(w.p("carla")) as ctx:
            unseal.offer_share(ctx, restarted, ring, foreign[0])
        with restarted.work(w.p("cedric")) as ctx, pytest.raises(Conflict, match="not the installation's master"):
            unseal.offer_share(ctx, restarted, ring, foreign[1])
        assert ring.sealed
        with restarted.work(w.p("carla")) as ctx, pytest.raises(ValidationFailed):
            unseal.offer_share(ctx, restarted, ring, "not a share at all")
    finally:
        restarted.engine.dispose()
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(ValidationFailed) as exc:
        unseal.split_master(ctx, keyring(w.rt), people, 1, present=people, approvers=people)
    assert [e.field for e in exc.value.errors] == ["threshold"]


def test_a_fresh_installation_generates_its_master_key_as_shares(w: KeyWorld, tmp_path: Path) -> None:
    fresh_settings = w.rt.settings.model_copy(
        update={"master_key_source": "shares", "data_dir": tmp_path / "fresh", "database_url": ""}
    )
    fresh = Runtime.build(fresh_settings, w.rt.clock)
    try:
        upgrade(fresh.engine)
        ring = keyring(fresh)
        assert ring.sealed
        with fresh.work(SYSTEM) as ctx:
            mnemonics = unseal.generate_master(ctx, ring, [1, 2, 3], 2, present=[1, 2], approvers=[2, 3])
            assert ctx.session.query(Ceremony).filter_by(kind="master_key").count() == 1
        assert not ring.sealed
        assert not fresh_settings.effective_master_key_file.exists()  # never written anywhere
        master = ring.master
        assert shares.combine(mnemonics[1:]) == master
        with fresh.work(SYSTEM) as ctx, pytest.raises(Conflict, match="already"):
            unseal.generate_master(ctx, ring, [1, 2, 3], 2, present=[1, 2], approvers=[2, 3])
    finally:
        fresh.engine.dispose()

"""Backups: sealed to a recipient whose private half custodians hold as SLIP-39 shares; restored into a fresh
installation, they decrypt and verify what was protected before."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from portcullis.core.clock import FrozenClock
from portcullis.core.errors import Conflict, ValidationFailed
from portcullis.core.migrate import upgrade
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.keys import backup
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import CryptoKey, KeyVersion
from portcullis.keys.service import backends, key_service
from tests.keys.world import SYSTEM, KeyWorld, build_key_world

POLICY = {op: ["system:tests"] for op in ("sign", "verify", "encrypt", "decrypt")}


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _software(rt: Runtime) -> SoftwareBackend:
    backend = backends(rt)["software"]
    assert isinstance(backend, SoftwareBackend)
    return backend


def _fresh(tmp_path: Path) -> Runtime:
    rt = Runtime.build(Settings(data_dir=tmp_path / "fresh"), FrozenClock(datetime(2026, 12, 1, tzinfo=UTC)))
    upgrade(rt.engine)
    return rt


def test_a_backup_restores_into_a_fresh_installation(w: KeyWorld, tmp_path: Path) -> None:
    w.register(key="vault", name="Vault", purpose="wallet backups", algorithm="aes-256", policy=POLICY)
    w.register(key="signer", name="Signer", purpose="payments", algorithm="ed25519", policy=POLICY)
    with w.rt.work(SYSTEM) as ctx:
        sealed = w.service.encrypt(ctx, "vault", b"twelve seed words", b"wallet-1")
        version, signature = w.service.sign(ctx, "signer", b"pay 1 BTC")
        custodians = [w.people[n] for n in ("carla", "cedric", "chloe", "sofia", "aude")]
        mnemonics = backup.create_recipient(ctx, custodians, 3, present=custodians[:2])
        data = backup.backup(ctx, _software(w.rt))
    assert len(mnemonics) == 5
    # No material in the clear: neither key's bytes appear in the file, in any common encoding.
    with w.rt.session() as s:
        sealed_keys = list(s.execute(select(CryptoKey.algorithm, KeyVersion.ref).join(KeyVersion)))
    assert len(sealed_keys) == 2
    for algorithm, ref in sealed_keys:
        material = _software(w.rt).open(Algorithm(algorithm), ref or b"")
        for form in (material, material.hex().encode(), base64.b64encode(material)):
            assert form not in data

    fresh = _fresh(tmp_path)
    with fresh.work(SYSTEM) as ctx:
        restored = backup.restore(ctx, _software(fresh), data, [mnemonics[4], mnemonics[0], mnemonics[2]])
    assert restored == ["vault", "signer"]
    service = key_service(fresh)
    with fresh.work(SYSTEM) as ctx:
        assert service.decrypt(ctx, "vault", sealed, b"wallet-1") == b"twelve seed words"
        assert service.verify(ctx, "signer", b"pay 1 BTC", signature, version)
        again = service.encrypt(ctx, "vault", b"still usable")
        assert service.decrypt(ctx, "vault", again) == b"still usable"


def test_a_restore_needs_enough_shares_of_the_right_key(w: KeyWorld, tmp_path: Path) -> None:
    w.register(key="vault", name="Vault", purpose="wallet backups", algorithm="aes-256", policy=POLICY)
    custodians = [w.people[n] for n in ("carla", "cedric", "chloe")]
    with w.rt.work(SYSTEM) as ctx:
        first = backup.create_recipient(ctx, custodians, 2, present=custodians)
        other = backup.create_recipient(ctx, custodians, 2, present=custodians)
        data = backup.backup(ctx, _software(w.rt))  # for the latest recipient: `other`
    fresh = _fresh(tmp_path)
    with fresh.work(SYSTEM) as ctx:
        with pytest.raises(ValidationFailed, match="do not combine"):
            backup.restore(ctx, _software(fresh), data, other[:1])
        with pytest.raises(Conflict, match="different backup key"):
            backup.restore(ctx, _software(fresh), data, first[:2])
        with pytest.raises(ValidationFailed):
            backup.restore(ctx, _software(fresh), b"{}", other[:2])
    with fresh.work(SYSTEM) as ctx:
        assert backup.restore(ctx, _software(fresh), data, other[1:]) == ["vault"]

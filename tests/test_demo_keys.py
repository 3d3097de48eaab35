"""The demo's keys: TLS keys, wallet keys on the HSM, a 3-of-5 backup key, an overdue rotation, a replacement."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import select

from portcullis.core.runtime import Runtime
from portcullis.demo import build_demo
from portcullis.keys.backup import BackupRecipient
from portcullis.keys.models import Ceremony, CryptoKey, KeyVersion, Replacement
from portcullis.keys.register import key_view
from portcullis.keys.replace import replacement_view
from tests.keys.softhsm import SoftHsmToken, softhsm_token
from tests.keys.world import SYSTEM


def test_the_demo_keys_tell_their_story(rt: Runtime) -> None:
    build_demo(rt)
    with rt.work(SYSTEM) as ctx:
        s = ctx.session
        keys = {k.key: k for k in s.scalars(select(CryptoKey))}
        now = ctx.now()
        assert {"tls-exchange-2026", "tls-fix-gateway", "wallet-hot-signing", "wallet-warm-signing"} <= set(keys)
        hot = keys["wallet-hot-signing"]
        assert (hot.custody, hot.device_asset_id is not None, hot.critical) == ("external", True, True)
        overdue = [k for k in keys.values() if k.rotate_by is not None and k.rotate_by < now and k.state == "active"]
        assert [k.key for k in overdue] == ["db-field-encryption"]
        [recipient] = s.scalars(select(BackupRecipient)).all()
        assert (recipient.threshold, recipient.count) == (3, 5)
        assert s.scalar(select(Ceremony.id).where(Ceremony.kind == "backup_key")) is not None
        [rep] = s.scalars(select(Replacement)).all()
        view = replacement_view(ctx, rep)
        assert (view["old_key"], view["new_key"], view["cause"]) == (
            "webhook-signing-2025",
            "webhook-signing-2026",
            "compromised",
        )
        assert view["progress"].startswith("1 of ")
        assert keys["webhook-signing-2025"].state == "compromised"
        uses = s.scalar(select(KeyVersion.uses).where(KeyVersion.key_id == keys["webhook-signing-2025"].id))
        assert uses == 40
        assert key_view(keys["tls-exchange-2026"])["protection"]["local"] is True


token = softhsm_token()


def test_with_an_hsm_configured_the_wallet_keys_are_generated_on_it(rt: Runtime, token: SoftHsmToken) -> None:
    settings = rt.settings.model_copy(
        update={"pkcs11_token": token.label, "pkcs11_pin": SecretStr(token.user_pin), "pkcs11_module": token.module}
    )
    with_hsm = Runtime.build(settings, rt.clock)
    try:
        build_demo(with_hsm)
        with with_hsm.session() as s:
            wallets = s.scalars(select(CryptoKey).where(CryptoKey.key.like("wallet-%"))).all()
            assert {(k.custody, k.backend) for k in wallets} == {("internal", "pkcs11")}
            assert all(k.protection["never_extractable"] and k.protection["local"] for k in wallets)
            assert s.scalar(select(Ceremony.id).where(Ceremony.kind == "critical_key")) is not None
    finally:
        with_hsm.engine.dispose()

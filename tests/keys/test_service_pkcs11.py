"""The key service on a real SoftHSM2 token: keys generated on the device, non-extractable, the register showing
the token's own attributes as the proof, and use through the same checks as the software backend."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import select

from portcullis.core.runtime import Runtime
from portcullis.keys.models import KeyState, KeyVersion
from portcullis.keys.register import KeyIn, change_state, key_by_name, register_key
from portcullis.keys.use import KeyService
from tests.keys.softhsm import SoftHsmToken, softhsm_token
from tests.keys.world import SYSTEM, KeyWorld, build_key_world

token = softhsm_token()
POLICY = {op: ["system:tests"] for op in ("sign", "verify", "encrypt", "decrypt")}


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def test_hsm_keys_are_generated_on_the_token_and_used_through_the_service(w: KeyWorld, token: SoftHsmToken) -> None:
    hsm = token.backend()
    service = KeyService({"pkcs11": hsm})
    with w.rt.work(SYSTEM) as ctx:
        for name, algorithm in (("hot-wallet", "ecdsa-secp256k1"), ("hsm-vault", "aes-256")):
            register_key(
                ctx,
                KeyIn(key=name, name=name, purpose="custody", algorithm=algorithm, backend="pkcs11", policy=POLICY),
                hsm,
            )
        wallet = key_by_name(ctx, "hot-wallet")
        # The proof that the key never left the device: the token's own attributes, as the register shows them.
        assert wallet.protection == {
            "local": True,
            "never_extractable": True,
            "always_sensitive": True,
            "extractable": False,
        }
        _, signature = service.sign(ctx, "hot-wallet", b"withdraw 2 BTC")
        blob = service.encrypt(ctx, "hsm-vault", b"wallet descriptor")
        assert service.decrypt(ctx, "hsm-vault", blob) == b"wallet descriptor"
        public = ctx.session.scalar(select(KeyVersion.public_key).where(KeyVersion.key_id == wallet.id))
        service.flush(ctx)
    key = load_der_public_key(public or b"")
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, b"withdraw 2 BTC", ec.ECDSA(hashes.SHA256()))
    with w.rt.work(SYSTEM) as ctx:
        change_state(ctx, "hot-wallet", KeyState.SUSPENDED, "withdrawals paused")
    service.forget()
    with w.rt.work(SYSTEM) as ctx, pytest.raises(Exception, match="suspended: it may not sign"):
        service.sign(ctx, "hot-wallet", b"withdraw 3 BTC")

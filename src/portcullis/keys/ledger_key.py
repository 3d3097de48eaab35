"""The ledger's checkpoint-signing key as a key of the key service (issue 6; §25, §27).

Adopting it imports the key file's Ed25519 key into the register (sealed under
the master key, custodians named, a ceremony recorded), so the verifier key the
auditors hold stays the same; from then on every process signs checkpoints with
the register's copy and the file can be deleted. The key's state is read when a
process first signs: a ledger key that is no longer active stops it from signing,
loudly, rather than signing with a key the firm has withdrawn.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_der_private_key
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, PortcullisError
from portcullis.core.runtime import Runtime
from portcullis.keys import lifecycle
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import Ceremony, CryptoKey, Custody, KeyCustodian, KeyState, KeyVersion
from portcullis.keys.register import key_view
from portcullis.keys.service import backends
from portcullis.ledger.note import Signer
from portcullis.ledger.service import record_change
from portcullis.ledger.signing import key_name, load_or_create_signer, register_source

LEDGER_KEY = "ledger-checkpoints"


def adopt(ctx: Context, rt: Runtime, custodians: list[int], present: list[int], approvers: list[int]) -> CryptoKey:
    """Bring the key file's signing key into the register, unchanged."""
    from portcullis.core.permissions import Permission

    ctx.require(Permission.KEYS_ADMIN)
    if ctx.session.scalar(select(CryptoKey.id).where(CryptoKey.key == LEDGER_KEY)) is not None:
        raise Conflict("The ledger's signing key is already in the register")
    if len(set(present)) < 2 or len(set(approvers)) < 2:
        raise Conflict("Adopting the ledger's signing key is a ceremony: two present and two approving")
    software = backends(rt)["software"]
    assert isinstance(software, SoftwareBackend)
    file_signer = load_or_create_signer(rt.settings)
    der = file_signer.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    made = software.import_material(Algorithm.ED25519, der)
    now = ctx.now()
    k = CryptoKey(
        key=LEDGER_KEY,
        name="Ledger checkpoint-signing key",
        algorithm=Algorithm.ED25519.value,
        size_bits=256,
        purpose="signs the ledger's checkpoints (C2SP signed notes); its public half is the auditors' verifier key",
        custody=Custody.INTERNAL.value,
        backend="software",
        critical=True,
        location=f"adopted from {rt.settings.effective_ledger_key_file}",
        policy={"sign": ["system:ledger"]},
        protection=made.protection.as_dict(),
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(k)
    ctx.session.flush()
    ctx.session.add(KeyVersion(key_id=k.id, version=1, ref=made.ref, public_key=made.public_key, created_at=now))
    ctx.session.add_all(KeyCustodian(key_id=k.id, person_id=p) for p in sorted(set(custodians)))
    c = Ceremony(
        kind="ledger_key",
        key_id=k.id,
        held_at=now,
        present=sorted(set(present)),
        approvers=sorted(set(approvers)),
        notes="adopted from the key file; the verifier key is unchanged",
    )
    ctx.session.add(c)
    ctx.session.flush()
    record_change(
        ctx, "key.registered", "crypto_key", k.id, None, key_view(k), adopted=True, verifier=str(file_signer.verifier)
    )
    lifecycle.transition(ctx, k, KeyState.ACTIVE, "the ledger's checkpoint-signing key, adopted")
    return k


def signer_from_register(runtime: Any) -> Signer | None:
    """The register's ledger key as a checkpoint signer, or None while the key file is still the source."""
    try:
        with runtime.session() as s:
            row = s.execute(
                select(CryptoKey.state, KeyVersion.ref)
                .join(KeyVersion, KeyVersion.key_id == CryptoKey.id)
                .where(CryptoKey.key == LEDGER_KEY)
                .order_by(KeyVersion.version.desc())
                .limit(1)
            ).one_or_none()
    except DBAPIError:
        return None  # a schema that is not there yet: nothing adopted
    if row is None:
        return None
    state, ref = row
    if state != KeyState.ACTIVE.value or ref is None:
        raise PortcullisError(f"The ledger's signing key is {state}: no checkpoint is signed until it is replaced")
    software = backends(runtime)["software"]
    assert isinstance(software, SoftwareBackend)
    key = load_der_private_key(software.material(Algorithm.ED25519, ref), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return Signer(key_name(runtime.settings), key)


register_source(signer_from_register)

"""The demo firm's keys (§26-28): TLS keys of the exchange, wallet signing keys on its HSM, a backup key split
3 of 5 among custodians, a key overdue for rotation, and a compromised key being replaced."""

from __future__ import annotations

from portcullis import demo_data as data
from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.demo_access import Story
from portcullis.inventory.models import Person
from portcullis.keys import backup, ledger_key, replace, rotation
from portcullis.keys.register import KeyIn, register_key
from portcullis.keys.service import backends, key_service

CISO, TREASURY, WALLET_OPS, SRE, CTO = "AUR-022", "AUR-031", "AUR-032", "AUR-012", "AUR-004"
BACKUP_CUSTODIANS = ("AUR-022", "AUR-031", "AUR-004", "AUR-034", "AUR-027")


def _email(external_id: str) -> str:
    return next(p.email for p in data.PEOPLE_SPECS if p.external_id == external_id)


def register_keys(story: Story, rt: Runtime) -> None:
    """Call with the story at its start, so that keys age through the demo's weeks."""
    software = backends(rt)["software"]
    ctx = story.ctx()
    custodians = [_email(x) for x in (CISO, TREASURY, WALLET_OPS)]

    def key(spec: dict[str, object], held: bool = True) -> None:
        base: dict[str, object] = {"owner_email": _email(CISO), "custodian_emails": custodians}
        register_key(story.ctx(), KeyIn.model_validate({**base, **spec}), software if held else None)

    key(
        {
            "key": "tls-exchange-2026",
            "name": "Exchange TLS key (api.aurora.example)",
            "algorithm": "ecdsa-p256",
            "purpose": "TLS server key of the customer API and the web trading app",
            "crypto_period_days": 365,
            "asset_external_ids": ["AST-API", "AST-WEB"],
            "policy": {"sign": ["system:tls"], "verify": ["any"]},
        }
    )
    key(
        {
            "key": "tls-fix-gateway",
            "name": "FIX gateway TLS key",
            "algorithm": "rsa-3072",
            "purpose": "TLS server key of the FIX order gateway, presented to market makers",
            "crypto_period_days": 365,
            "asset_external_ids": ["AST-OGW"],
            "policy": {"sign": ["system:tls"], "verify": ["any"]},
        }
    )
    # Wallet signing keys live on the primary HSM. With a PKCS#11 token configured (PORTCULLIS_PKCS11_*), the
    # demo generates them there; otherwise they are registered as the HSM's own, held outside Portcullis.
    hsm = backends(rt).get("pkcs11")
    for wallet, asset in (("hot", "AST-HOT-WALLET"), ("warm", "AST-WARM-WALLET")):
        spec: dict[str, object] = {
            "key": f"wallet-{wallet}-signing",
            "name": f"{wallet.title()} wallet signing key",
            "algorithm": "ecdsa-secp256k1",
            "critical": True,
            "device_external_id": "AST-HSM-1",
            "purpose": f"signs {wallet} wallet withdrawals (BIP-32 root on the HSM)",
            "location": f"HSM primary, partition {wallet}-wallet; non-extractable",
            "asset_external_ids": [asset],
            "custodian_emails": [_email(TREASURY), _email(WALLET_OPS), _email(CISO)],
        }
        if hsm is None:
            key({**spec, "custody": "external", "backend": None}, held=False)
        else:
            witnesses = [_email(TREASURY), _email(WALLET_OPS)]
            register_key(
                story.ctx(),
                KeyIn.model_validate(
                    {
                        "owner_email": _email(CISO),
                        **spec,
                        "backend": "pkcs11",
                        "ceremony_present": witnesses,
                        "ceremony_approvers": [_email(CISO), _email(CTO)],
                        "policy": {"sign": ["system:wallet-signer"], "verify": ["any"]},
                    }
                ),
                hsm,
            )
    # Fourteen days' crypto-period, created three weeks ago: overdue for rotation today.
    key(
        {
            "key": "db-field-encryption",
            "name": "Client PII field encryption key",
            "algorithm": "aes-256",
            "purpose": "encrypts client identity documents in the KYC store",
            "crypto_period_days": 14,
            "asset_external_ids": ["AST-LEDGER"],
            "policy": {"encrypt": ["system:kyc"], "decrypt": ["system:kyc"]},
        }
    )
    key(
        {
            "key": "webhook-signing-2025",
            "name": "Webhook signing key",
            "algorithm": "ed25519",
            "purpose": "signs the webhooks sent to institutional clients",
            "asset_external_ids": ["AST-API"],
            "policy": {"sign": ["system:webhooks"], "verify": ["any"]},
        }
    )
    people = [story.base.session.query(Person.id).filter(Person.external_id == x).scalar() for x in BACKUP_CUSTODIANS]
    ids = [p for p in people if p is not None]
    # The backup key's five shares are handed to the custodians at the ceremony; the demo keeps none of them.
    backup.create_recipient(ctx, ids, 3, present=ids[:3])
    # The ledger's own signing key joins the register (the demo keeps its key file too).
    ledger_key.adopt(story.ctx(), rt, ids[:3], present=ids[:2], approvers=ids[2:4])


def compromise_and_replace(story: Story, rt: Runtime) -> None:
    """Call at the story's end: some use of the keys, then the webhook key leaks and is replaced."""
    software = backends(rt)["software"]
    service = key_service(rt)
    webhooks = story.ctx(_system("webhooks"))
    for n in range(40):
        service.sign(webhooks, "webhook-signing-2025", f"webhook {n}".encode())
    kyc = story.ctx(_system("kyc"))
    for n in range(25):
        service.encrypt(kyc, "db-field-encryption", f"passport scan {n}".encode())
    service.flush(story.ctx())
    rep = replace.replace(
        story.ctx(),
        "webhook-signing-2025",
        "compromised",
        "private key pasted into a support ticket",
        software,
        "webhook-signing-2026",
    )
    first = replace.replacement_view(story.ctx(), rep)["tasks"][0]["id"]
    replace.complete_task(story.ctx(), first, "customer API now signs with webhook-signing-2026")
    service.forget()
    # The daily pass's view of keys: the field-encryption key is past its crypto-period.
    rotation.rotation_pass(story.ctx())


def _system(purpose: str) -> Principal:
    return Principal.system(purpose)

"""A small firm for the key tests: a security officer who administers keys, three custodians, an auditor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from portcullis.access.catalogue_identity import link_user_to_person
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn
from portcullis.keys.register import KeyIn, register_key
from portcullis.keys.service import backends, key_service
from portcullis.keys.use import KeyService
from tests.factories import Made, make_user

SYSTEM = Principal.system("tests")
PEOPLE = {
    "sofia": Role.SECURITY_OFFICER,
    "carla": Role.KEY_CUSTODIAN,
    "cedric": Role.KEY_CUSTODIAN,
    "chloe": Role.KEY_CUSTODIAN,
    "aude": Role.AUDITOR,
}


def email(name: str) -> str:
    return f"{name}@kestrel.example.eu"


@dataclass
class KeyWorld:
    rt: Runtime
    people: dict[str, int] = field(default_factory=dict)
    users: dict[str, Made] = field(default_factory=dict)

    def p(self, name: str) -> Principal:
        return self.users[name].principal

    @property
    def service(self) -> KeyService:
        return key_service(self.rt)

    def register(self, who: str = "sofia", **fields: Any) -> None:
        spec: dict[str, Any] = {
            "key": "payments-signing",
            "name": "Payments signing key",
            "purpose": "signs payment instructions to the custodian",
            "algorithm": "ecdsa-p256",
            "owner_email": email("sofia"),
            "custodian_emails": [email("carla"), email("cedric"), email("chloe")],
            "asset_external_ids": ["A-PAY"],
            "policy": {"sign": ["role:key_custodian", "system:tests"], "verify": ["any"]},
        }
        spec.update(fields)
        with self.rt.work(self.p(who)) as ctx:
            register_key(ctx, KeyIn.model_validate(spec), backends(self.rt)["software"])


def build_key_world(rt: Runtime) -> KeyWorld:
    w = KeyWorld(rt)
    with rt.work(SYSTEM) as ctx:
        for name in PEOPLE:
            w.people[name] = inventory.create_person(
                ctx,
                PersonIn(
                    external_id=f"HR-{name}",
                    email=email(name),
                    full_name=name.title(),
                    status="active",
                    start_date=date(2024, 1, 1),
                    mfa_enrolled=True,
                ),
            ).id
        inventory.create_asset(
            ctx,
            AssetIn(
                external_id="A-PAY",
                name="Payments gateway",
                type="application",
                criticality="critical",
                owner_id=w.people["sofia"],
            ),
        )
    for name, role in PEOPLE.items():
        w.users[name] = make_user(rt, role, email(name))
        with rt.work(SYSTEM) as ctx:
            link_user_to_person(ctx, w.users[name].user.id, w.people[name])
    return w

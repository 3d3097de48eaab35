"""A small firm for the request, approval and grant tests, built through the services.

People (platform user in brackets):
  ana   Engineering, manager max, MFA enrolled   (staff: asks for access)
  ben   Engineering, manager max, no MFA         (no user)
  max   Engineering manager                      (approver)
  olga  owner of both ICT assets                 (approver)
  zoe   owner of the server room                 (approver)
  sofia, sven                                    (security officers)

Entitlements:
  app-read       on the ordinary asset; approver manager or owner; needs SEC-101; at most 14 days
  db-admin       on the critical asset; privileged; approvers owner and security officer (2 needed)
  server-room    on the zone; approver owner; at most 7 days
  pay-initiate / pay-approve  on the ordinary asset; security officer approves; a SoD rule forbids both
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select

from portcullis.access import catalogue
from portcullis.access.models import Finding, Grant
from portcullis.access.schemas import EntitlementIn, RequestIn, SodRuleIn, TrainingRecordIn
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn, SiteIn, ZoneIn
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from tests.factories import Made, make_user

SYSTEM = Principal.system("tests")
JUSTIFICATION = "on-call rotation needs to read the logs"

PEOPLE: dict[str, dict[str, Any]] = {
    "max": {"department": "Engineering"},
    "ana": {"department": "Engineering", "manager": "max", "mfa_enrolled": True},
    "ben": {"department": "Engineering", "manager": "max"},
    "olga": {"department": "Operations", "mfa_enrolled": True},
    "zoe": {"department": "Facilities"},
    "sofia": {"department": "Security", "mfa_enrolled": True},
    "sven": {"department": "Security", "mfa_enrolled": True},
}
USERS: dict[str, Role] = {
    "ana": Role.STAFF,
    "max": Role.APPROVER,
    "olga": Role.APPROVER,
    "zoe": Role.APPROVER,
    "sofia": Role.SECURITY_OFFICER,
    "sven": Role.SECURITY_OFFICER,
}


def email(name: str) -> str:
    return f"{name}@kestrel.example.eu"


@dataclass
class World:
    rt: Runtime
    people: dict[str, int] = field(default_factory=dict)
    users: dict[str, Made] = field(default_factory=dict)
    ents: dict[str, int] = field(default_factory=dict)
    asset_id: int = 0
    critical_asset_id: int = 0
    zone_id: int = 0

    def p(self, name: str) -> Principal:
        return self.users[name].principal

    def person_in(self, name: str, **changes: Any) -> PersonIn:
        with self.rt.work(SYSTEM) as ctx:
            view = inventory.person_view(inventory.get_person(ctx, self.people[name]))
        fields = {k: view[k] for k in PersonIn.model_fields}
        fields.update(changes)
        return PersonIn(**fields)

    def update_person(self, name: str, **changes: Any) -> None:
        data = self.person_in(name, **changes)
        with self.rt.work(SYSTEM) as ctx:
            inventory.update_person(ctx, self.people[name], data)

    def ask(self, who: str, subject: str, ent: str, **kw: Any) -> int:
        from portcullis.access import requests

        data = RequestIn(
            subject_id=self.people[subject], entitlement_id=self.ents[ent], justification=JUSTIFICATION, **kw
        )
        with self.rt.work(self.p(who)) as ctx:
            return requests.request_access(ctx, data).id

    def decide(self, who: str, request_id: int, approve: bool = True, comment: str = "") -> str:
        from portcullis.access import requests
        from portcullis.access.schemas import DecisionIn

        with self.rt.work(self.p(who)) as ctx:
            return requests.decide(ctx, request_id, DecisionIn(approve=approve, comment=comment)).status

    def train(self, name: str, course: str, completed: Any, expires: Any = None) -> None:
        with self.rt.work(SYSTEM) as ctx:
            catalogue.record_training(
                ctx,
                TrainingRecordIn(
                    person_id=self.people[name], course=course, completed_at=completed, expires_at=expires
                ),
            )

    def grants(self, name: str) -> list[Grant]:
        with self.rt.session() as s:
            return list(s.scalars(select(Grant).where(Grant.person_id == self.people[name]).order_by(Grant.id)))

    def open_findings(self) -> dict[str, Finding]:
        with self.rt.session() as s:
            return {f.key: f for f in s.scalars(select(Finding).where(Finding.status == "open"))}


def actions(rt: Runtime, object_type: str | None = None) -> list[str]:
    with rt.session() as s:
        stmt = select(LedgerRecord.action).order_by(LedgerRecord.id)
        if object_type is not None:
            stmt = stmt.where(LedgerRecord.object_type == object_type)
        return list(s.scalars(stmt))


def records(rt: Runtime, action: str) -> list[dict[str, Any]]:
    with rt.session() as s:
        rows = s.scalars(select(LedgerRecord).where(LedgerRecord.action == action).order_by(LedgerRecord.id))
        return [decode(r) for r in rows]


def build_world(rt: Runtime) -> World:
    w = World(rt)
    with rt.work(SYSTEM) as ctx:
        for name, spec in PEOPLE.items():
            person = inventory.create_person(
                ctx,
                PersonIn(
                    external_id=f"HR-{name}",
                    email=email(name),
                    full_name=name.title(),
                    department=spec["department"],
                    manager_id=w.people[spec["manager"]] if "manager" in spec else None,
                    status="active",
                    start_date=date(2024, 1, 1),
                    mfa_enrolled=spec.get("mfa_enrolled", False),
                ),
            )
            w.people[name] = person.id
        site = inventory.create_site(ctx, SiteIn(external_id="S-HQ", name="Head office", kind="office"))
        zone = inventory.create_zone(
            ctx,
            ZoneIn(
                external_id="Z-SRV",
                site_id=site.id,
                name="Server room",
                kind="server_room",
                criticality="important",
                owner_id=w.people["zoe"],
            ),
        )
        w.zone_id = zone.id
        w.asset_id = inventory.create_asset(
            ctx,
            AssetIn(
                external_id="A-APP",
                name="Back office",
                type="application",
                criticality="important",
                owner_id=w.people["olga"],
            ),
        ).id
        w.critical_asset_id = inventory.create_asset(
            ctx,
            AssetIn(
                external_id="A-DB",
                name="Custody database",
                type="database",
                criticality="critical",
                owner_id=w.people["olga"],
            ),
        ).id
        specs = {
            "app-read": EntitlementIn(
                key="app-read",
                name="Read back office",
                asset_id=w.asset_id,
                approvers=["manager", "owner"],
                required_training=["SEC-101"],
                max_duration_days=14,
            ),
            "db-admin": EntitlementIn(
                key="db-admin",
                name="Administer custody database",
                asset_id=w.critical_asset_id,
                privileged=True,
                approvers=["owner", "security_officer"],
            ),
            "server-room": EntitlementIn(
                key="server-room",
                name="Enter the server room",
                zone_id=w.zone_id,
                approvers=["owner"],
                max_duration_days=7,
            ),
            "pay-initiate": EntitlementIn(
                key="pay-initiate",
                name="Initiate payments",
                asset_id=w.asset_id,
                approvers=["security_officer"],
            ),
            "pay-approve": EntitlementIn(
                key="pay-approve",
                name="Approve payments",
                asset_id=w.asset_id,
                approvers=["security_officer"],
            ),
        }
        for key, spec_in in specs.items():
            w.ents[key] = catalogue.create_entitlement(ctx, spec_in).id
        catalogue.create_sod_rule(
            ctx,
            SodRuleIn(
                name="four eyes on payments",
                left_entitlement_id=w.ents["pay-initiate"],
                right_entitlement_id=w.ents["pay-approve"],
                reason="one person must not both initiate and approve a payment",
            ),
        )
    for name, role in USERS.items():
        made = make_user(rt, role, email=email(name))
        w.users[name] = made
        with rt.work(SYSTEM) as ctx:
            catalogue.link_user_to_person(ctx, made.user.id, w.people[name])
    return w

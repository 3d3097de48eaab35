"""REST routes for the access catalogue: entitlements, roles, SoD rules, training, group mappings, identity links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from portcullis.access import catalogue
from portcullis.access.schemas import AccessRoleIn, EntitlementIn, GroupMappingIn, SodRuleIn, TrainingRecordIn
from portcullis.accounts.deps import Actor, require
from portcullis.core.http import After, Limit, Page, page_of
from portcullis.core.permissions import Permission

router = APIRouter(tags=["access"])

# One permission per route (the route-walking test): the catalogue is read with
# ACCESS_REQUEST, since staff must see what they can ask for.
# Staff see what they can ask for; auditors and the management body see it to audit.
CatalogueReader = Annotated[Actor, Depends(require(Permission.ACCESS_REQUEST, Permission.ACCESS_READ))]
Reader = Annotated[Actor, Depends(require(Permission.ACCESS_READ))]
Admin = Annotated[Actor, Depends(require(Permission.ACCESS_ADMIN))]
UserAdmin = Annotated[Actor, Depends(require(Permission.USERS_MANAGE))]


class EntitlementOut(BaseModel):
    id: int
    key: str
    name: str
    description: str
    target_kind: str
    asset_id: int | None
    asset_external_id: str | None
    zone_id: int | None
    zone_external_id: str | None
    privileged: bool
    remote_admin: bool
    required_training: list[str]
    max_duration_days: int | None
    approvers: list[str]
    min_approvals: int | None
    required_approvals: int
    scope: str
    active: bool
    created_at: datetime
    updated_at: datetime


class RoleOut(BaseModel):
    id: int
    key: str
    name: str
    description: str
    departments: list[str]
    person_kinds: list[str]
    required_training: list[str]
    entitlement_ids: list[int]
    entitlement_keys: list[str]
    created_at: datetime
    updated_at: datetime


class SodRuleOut(BaseModel):
    id: int
    name: str
    left_entitlement_id: int | None
    left_role_id: int | None
    right_entitlement_id: int | None
    right_role_id: int | None
    left: str | None
    right: str | None
    reason: str
    created_at: datetime


class TrainingRecordOut(BaseModel):
    id: int
    person_id: int
    course: str
    completed_at: datetime
    expires_at: datetime | None
    created_at: datetime


class GroupMappingOut(BaseModel):
    id: int
    system: str
    group_name: str
    entitlement_id: int
    entitlement_key: str | None


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int
    person_id: int


class LinkOut(BaseModel):
    user_id: int
    person_id: int






# --- entitlements ----------------------------------------------------------------------------------


@router.get("/entitlements", response_model=Page[EntitlementOut])
def list_entitlements(
    actor: CatalogueReader,
    asset_id: int | None = None,
    zone_id: int | None = None,
    privileged: bool | None = None,
    active: bool | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[EntitlementOut]:
    with actor.work() as ctx:
        result = catalogue.list_entitlements(
            ctx, asset_id=asset_id, zone_id=zone_id, privileged=privileged, active=active, q=q, after=after, limit=limit
        )
        return page_of(EntitlementOut, catalogue.entitlement_view, result)


@router.post("/entitlements", response_model=EntitlementOut, status_code=201)
def create_entitlement(body: EntitlementIn, actor: Admin) -> EntitlementOut:
    with actor.work() as ctx:
        return EntitlementOut.model_validate(catalogue.entitlement_view(catalogue.create_entitlement(ctx, body)))


@router.get("/entitlements/{entitlement_id}", response_model=EntitlementOut)
def get_entitlement(entitlement_id: int, actor: CatalogueReader) -> EntitlementOut:
    with actor.work() as ctx:
        return EntitlementOut.model_validate(catalogue.entitlement_view(catalogue.get_entitlement(ctx, entitlement_id)))


@router.put("/entitlements/{entitlement_id}", response_model=EntitlementOut)
def update_entitlement(entitlement_id: int, body: EntitlementIn, actor: Admin) -> EntitlementOut:
    with actor.work() as ctx:
        e = catalogue.update_entitlement(ctx, entitlement_id, body)
        return EntitlementOut.model_validate(catalogue.entitlement_view(e))


# --- roles -------------------------------------------------------------------------------------------


@router.get("/roles", response_model=Page[RoleOut])
def list_roles(
    actor: CatalogueReader,
    entitlement_id: int | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[RoleOut]:
    with actor.work() as ctx:
        result = catalogue.list_roles(ctx, entitlement_id=entitlement_id, q=q, after=after, limit=limit)
        return page_of(RoleOut, catalogue.role_view, result)


@router.post("/roles", response_model=RoleOut, status_code=201)
def create_role(body: AccessRoleIn, actor: Admin) -> RoleOut:
    with actor.work() as ctx:
        return RoleOut.model_validate(catalogue.role_view(catalogue.create_role(ctx, body)))


@router.get("/roles/{role_id}", response_model=RoleOut)
def get_role(role_id: int, actor: CatalogueReader) -> RoleOut:
    with actor.work() as ctx:
        return RoleOut.model_validate(catalogue.role_view(catalogue.get_role(ctx, role_id)))


@router.put("/roles/{role_id}", response_model=RoleOut)
def update_role(role_id: int, body: AccessRoleIn, actor: Admin) -> RoleOut:
    with actor.work() as ctx:
        return RoleOut.model_validate(catalogue.role_view(catalogue.update_role(ctx, role_id, body)))


# --- separation of duties ------------------------------------------------------------------------------


@router.get("/sod-rules", response_model=Page[SodRuleOut])
def list_sod_rules(
    actor: Reader,
    entitlement_id: int | None = None,
    role_id: int | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[SodRuleOut]:
    with actor.work() as ctx:
        result = catalogue.sod_rules_page(
            ctx, entitlement_id=entitlement_id, role_id=role_id, q=q, after=after, limit=limit
        )
        return page_of(SodRuleOut, catalogue.sod_rule_view, result)


@router.post("/sod-rules", response_model=SodRuleOut, status_code=201)
def create_sod_rule(body: SodRuleIn, actor: Admin) -> SodRuleOut:
    with actor.work() as ctx:
        return SodRuleOut.model_validate(catalogue.sod_rule_view(catalogue.create_sod_rule(ctx, body)))


# --- training -------------------------------------------------------------------------------------------


@router.get("/training-records", response_model=Page[TrainingRecordOut])
def list_training_records(
    actor: Reader,
    person_id: int | None = None,
    course: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[TrainingRecordOut]:
    with actor.work() as ctx:
        result = catalogue.training_page(ctx, person_id=person_id, course=course, after=after, limit=limit)
        return page_of(TrainingRecordOut, catalogue.training_view, result)


@router.post("/training-records", response_model=TrainingRecordOut, status_code=201)
def create_training_record(body: TrainingRecordIn, actor: Admin) -> TrainingRecordOut:
    with actor.work() as ctx:
        return TrainingRecordOut.model_validate(catalogue.training_view(catalogue.record_training(ctx, body)))


# --- group mappings ---------------------------------------------------------------------------------------


@router.get("/group-mappings", response_model=Page[GroupMappingOut])
def list_group_mappings(
    actor: Reader,
    system: str | None = None,
    entitlement_id: int | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[GroupMappingOut]:
    with actor.work() as ctx:
        result = catalogue.group_mappings_page(
            ctx, system=system, entitlement_id=entitlement_id, after=after, limit=limit
        )
        return page_of(GroupMappingOut, catalogue.group_mapping_view, result)


@router.post("/group-mappings", response_model=GroupMappingOut, status_code=201)
def create_group_mapping(body: GroupMappingIn, actor: Admin) -> GroupMappingOut:
    with actor.work() as ctx:
        return GroupMappingOut.model_validate(catalogue.group_mapping_view(catalogue.create_group_mapping(ctx, body)))


# --- identities ---------------------------------------------------------------------------------------------


@router.post("/identities/link", response_model=LinkOut)
def link_identity(body: LinkIn, actor: UserAdmin) -> LinkOut:
    """Link a platform user to the person in the register they are (who requests and approves)."""
    with actor.work() as ctx:
        catalogue.link_user_to_person(ctx, body.user_id, body.person_id)
    return LinkOut(user_id=body.user_id, person_id=body.person_id)

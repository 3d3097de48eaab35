"""SCIM 2.0 Groups (RFC 7643 §4.2): an access role, its members the people holding it.

Mapping (the IdP's view -> the register):
  id            the role id, as a string
  displayName   the role's name
  externalId    the IdP's identifier for the role (AccessRole.external_id); on creation it is
                also the role key when it can be one, else the key is a slug of displayName
  members       the role's open memberships; value is the member's SCIM user id (the person id)

Adding a member grants the role (grants.grant_role: the membership and a standing grant
per entitlement, after the eligibility rules and the blocking policy checks); removing
one ends the membership and revokes those grants at once. A member the policy refuses
fails the whole request with the reasons, and nothing is changed (one unit of work).
DELETE retires the role: every membership ends, and the role leaves the IdP's view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scim2_models import Meta, ResponseParameters
from sqlalchemy import ColumnElement, func, select

from portcullis.access import catalogue, grants
from portcullis.access.models import AccessRole, RoleMembership
from portcullis.access.schemas import AccessRoleIn
from portcullis.access.scim import (
    Group,
    GroupMember,
    ScimError,
    _dump,
    _key,
    _location,
    _text,
    _visible,
    from_domain,
    invalid,
    parse_patch,
)
from portcullis.core.context import Context
from portcullis.core.errors import PortcullisError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person
from portcullis.ledger.service import record_change

_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+"(?P<value>(?:[^"\\]|\\.)*)"\s*\]$', re.I)
_EQ = re.compile(r'^\s*(?P<attr>[\w.:$-]+)\s+eq\s+(?P<value>"(?:[^"\\]|\\.)*"|\d+)\s*$', re.I)
_GROUP_IGNORED = {"schemas", "id", "meta"}
_GROUP_URN_PREFIX = "urn:ietf:params:scim:schemas:core:2.0:group:"


# --- reading ----------------------------------------------------------------------------


def _members(ctx: Context, role_id: int) -> list[tuple[RoleMembership, Person]]:
    rows = ctx.session.execute(
        select(RoleMembership, Person)
        .join(Person, Person.id == RoleMembership.person_id)
        .where(RoleMembership.role_id == role_id, RoleMembership.ended_at.is_(None))
        .order_by(RoleMembership.id)
    )
    return [(m, p) for m, p in rows]


def group_resource(
    ctx: Context, role: AccessRole, base: str, params: ResponseParameters[Any] | None = None
) -> dict[str, Any]:
    members = _members(ctx, role.id)
    changed = [role.updated_at, *(m.since for m, _ in members)]
    last = ctx.session.scalar(select(func.max(RoleMembership.ended_at)).where(RoleMembership.role_id == role.id))
    if last is not None:
        changed.append(last)
    group = Group(
        id=str(role.id),
        external_id=role.external_id,
        display_name=role.name,
        members=[
            GroupMember(value=str(p.id), ref=_location(base, "Users", p.id), display=p.full_name)
            for _, p in members
        ]
        or None,
        meta=Meta(
            resource_type="Group",
            created=role.created_at,
            last_modified=max(changed),
            location=_location(base, "Groups", role.id),
        ),
    )
    return _dump(group, params)


def _live() -> ColumnElement[bool]:
    return AccessRole.retired_at.is_(None)


def load_group(ctx: Context, scim_id: str) -> AccessRole:
    ctx.require(Permission.ACCESS_ADMIN)
    role = None
    if scim_id.isdigit():
        role = ctx.session.scalars(select(AccessRole).where(AccessRole.id == int(scim_id), _live())).one_or_none()
    if role is None:
        raise ScimError(404, f"No group with id {scim_id!r}")
    return role


def _group_filter(expr: str) -> ColumnElement[bool]:
    m = _EQ.match(expr)
    if not m:
        raise invalid(
            f"Unsupported filter {expr!r}: use 'displayName eq \"...\"', 'externalId eq \"...\"' or 'id eq \"...\"'",
            "invalidFilter",
        )
    raw = m.group("value")
    value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
    attr = m.group("attr").lower().removeprefix(_GROUP_URN_PREFIX)
    if attr == "displayname":
        # displayName is not case-exact (RFC 7643 §4.2).
        return func.lower(AccessRole.name) == value.lower()
    if attr == "externalid":
        return AccessRole.external_id == value
    if attr == "id":
        return AccessRole.id == int(value) if value.isdigit() else AccessRole.id.is_(None)
    raise invalid(f"Filtering on {m.group('attr')!r} is not supported", "invalidFilter")


def list_groups(
    ctx: Context, filter_expr: str | None, start_index: int, count: int
) -> tuple[list[AccessRole], int]:
    ctx.require(Permission.ACCESS_ADMIN)
    stmt = select(AccessRole).where(_live())
    if filter_expr and filter_expr.strip():
        stmt = stmt.where(_group_filter(filter_expr))
    total = ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    if count <= 0:
        return [], total
    rows = ctx.session.scalars(stmt.order_by(AccessRole.id).offset(start_index - 1).limit(count))
    return list(rows), total


# --- the state the IdP edits --------------------------------------------------------------


@dataclass
class GroupState:
    display_name: str | None = None
    external_id: str | None = None
    members: list[str] = field(default_factory=list)  # SCIM user ids, in order, each once

    @classmethod
    def of(cls, ctx: Context, role: AccessRole) -> GroupState:
        return cls(role.name, role.external_id, [str(p.id) for _, p in _members(ctx, role.id)])

    def add(self, ids: list[str]) -> None:
        self.members.extend(i for i in ids if i not in self.members)

    def remove(self, ids: list[str]) -> None:
        self.members = [i for i in self.members if i not in ids]


def _member_ids(value: Any, where: str, entra: bool) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict) or (entra and isinstance(value, str)):
        # A single member where a list belongs: Entra sends it so at times.
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise invalid(f"{where} must be a list of members, each an object with a value")
    out: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, str) and entra:
            ident: str | None = item.strip() or None
        elif isinstance(item, dict):
            kind = _key(item, "type")
            if isinstance(kind, str) and kind.lower() == "group":
                raise invalid(f"{where}[{i}]: a group cannot be a member of a group here; name users only")
            ident = _text(_key(item, "value"), f"{where}[{i}].value")
        else:
            raise invalid(f"{where}[{i}] must be an object with a value (the member's user id)")
        if ident is None:
            raise invalid(f"{where}[{i}].value is required")
        if ident not in out:
            out.append(ident)
    return out


def _set_attr(state: GroupState, attr: str, value: Any, entra: bool, where: str) -> None:
    name = attr.lower().removeprefix(_GROUP_URN_PREFIX)
    if name == "displayname":
        state.display_name = _text(value, "displayName")
    elif name == "externalid":
        state.external_id = _text(value, "externalId")
    elif name == "members":
        state.members = _member_ids(value, where, entra)
    elif name in _GROUP_IGNORED:
        return
    else:
        raise invalid(f"'{attr}' is not an attribute of a Group", "invalidPath")


def state_from_payload(payload: Any, entra: bool) -> GroupState:
    if not isinstance(payload, dict):
        raise invalid("The body must be a Group object", "invalidSyntax")
    state = GroupState()
    for k, v in payload.items():
        _set_attr(state, k, v, entra, "members")
    if not state.display_name:
        raise invalid("displayName is required")
    return state


def _apply_op(state: GroupState, op: str, path: str, value: Any, entra: bool) -> None:
    filtered = _MEMBER_FILTER.match(path.strip())
    if filtered:
        if op != "remove":
            raise invalid(f"'{path}': a member is added or replaced through the path 'members'", "invalidPath")
        state.remove([filtered.group("value").replace('\\"', '"')])
        return
    name = path.strip().lower().removeprefix(_GROUP_URN_PREFIX)
    if name == "members":
        ids = _member_ids(value, "members", entra)
        if op == "add":
            state.add(ids)
        elif op == "replace":
            state.members = ids
        elif value is None:
            state.members = []
        else:
            # RFC 7644 gives remove no value; Entra sends the members to remove in one.
            # Removing only those is the safe reading: removing everyone is never what it means.
            state.remove(ids)
        return
    if name == "displayname" and op == "remove":
        raise invalid("displayName is required and cannot be removed", "mutability")
    if op != "remove" and value is None:
        raise invalid(f"'{path}': {op} needs a value")
    _set_attr(state, path, None if op == "remove" else value, entra, "members")


def apply_group_patch(state: GroupState, body: Any, entra: bool) -> GroupState:
    for op in parse_patch(body, entra):
        if op.path is None:
            for k, v in op.value.items():
                _apply_op(state, op.op, k, v, entra)
        else:
            _apply_op(state, op.op, op.path, op.value, entra)
    if not state.display_name:
        raise invalid("displayName is required")
    return state


# --- saving -----------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:90] or "group"


def _free_key(ctx: Context, wanted: str) -> str:
    taken = set(
        ctx.session.scalars(select(AccessRole.key).where(AccessRole.key.like(f"{wanted[:90]}%")))
    )
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted[:90]}-{n}" in taken:
        n += 1
    return f"{wanted[:90]}-{n}"


def _refuse_taken_external_id(ctx: Context, external_id: str | None, own_id: int | None) -> None:
    if external_id is None:
        return
    other = ctx.session.scalar(
        select(AccessRole.id).where(AccessRole.external_id == external_id, _live(), AccessRole.id != (own_id or 0))
    )
    if other is not None:
        raise ScimError(409, f"Group {other} already has externalId {external_id!r}", "uniqueness")


def _person(ctx: Context, scim_id: str) -> Person:
    p = None
    if scim_id.isdigit():
        p = ctx.session.scalars(select(Person).where(Person.id == int(scim_id), _visible())).one_or_none()
    if p is None:
        raise invalid(f"members: {scim_id!r} is not the id of a user")
    return p


def _sync_members(ctx: Context, role: AccessRole, wanted: list[str]) -> None:
    """Grant the role to those added, end it for those removed; refuse every ineligible member at once."""
    current = [str(p.id) for _, p in _members(ctx, role.id)]
    people = {i: _person(ctx, i) for i in wanted if i not in current}
    refused: list[str] = []
    for scim_id, person in people.items():
        try:
            grants.grant_role(ctx, person.id, role.id, f"SCIM: member of group {role.name}", source="scim")
        except ValidationFailed as exc:
            reasons = "; ".join(e.message for e in exc.errors) or exc.detail
            refused.append(f"{person.email} (user {scim_id}) may not hold role {role.key}: {reasons}")
        except PortcullisError as exc:
            raise from_domain(exc) from exc
    if refused:
        # The exception rolls back the whole unit of work: the members already granted above too.
        raise invalid("; ".join(refused))
    for scim_id in current:
        if scim_id not in wanted:
            grants.end_role(ctx, int(scim_id), role.id, f"SCIM: removed from group {role.name}")


def _save_attributes(ctx: Context, role: AccessRole, state: GroupState) -> None:
    assert state.display_name is not None
    if state.display_name != role.name:
        view = catalogue.role_view(role)
        data = {k: view[k] for k in AccessRoleIn.model_fields}
        data["name"] = state.display_name
        try:
            catalogue.update_role(ctx, role.id, AccessRoleIn(**data))
        except PortcullisError as exc:
            raise from_domain(exc) from exc
        except ValueError as exc:
            raise invalid(f"displayName: {exc}") from exc
    if state.external_id != role.external_id:
        _refuse_taken_external_id(ctx, state.external_id, role.id)
        before = {"external_id": role.external_id}
        role.external_id = state.external_id
        role.updated_at = ctx.now()
        ctx.session.flush()
        record_change(ctx, "role.updated", "access_role", role.id, before, {"external_id": role.external_id})


def create_group(ctx: Context, payload: Any, entra: bool) -> AccessRole:
    ctx.require(Permission.ACCESS_ADMIN)
    state = state_from_payload(payload, entra)
    assert state.display_name is not None
    _refuse_taken_external_id(ctx, state.external_id, None)
    wanted = state.external_id if state.external_id and _KEY.match(state.external_id) else _slug(state.display_name)
    try:
        role = catalogue.create_role(ctx, AccessRoleIn(key=_free_key(ctx, wanted), name=state.display_name))
    except PortcullisError as exc:
        raise from_domain(exc) from exc
    except ValueError as exc:
        raise invalid(f"displayName: {exc}") from exc
    if state.external_id is not None:
        _save_attributes(ctx, role, state)
    _sync_members(ctx, role, state.members)
    return role


def replace_group(ctx: Context, scim_id: str, payload: Any, entra: bool) -> AccessRole:
    ctx.require(Permission.ACCESS_ADMIN)
    role = load_group(ctx, scim_id)
    state = state_from_payload(payload, entra)
    _save_attributes(ctx, role, state)
    _sync_members(ctx, role, state.members)
    return role


def patch_group(ctx: Context, scim_id: str, body: Any, entra: bool) -> AccessRole:
    ctx.require(Permission.ACCESS_ADMIN)
    role = load_group(ctx, scim_id)
    state = apply_group_patch(GroupState.of(ctx, role), body, entra)
    _save_attributes(ctx, role, state)
    _sync_members(ctx, role, state.members)
    return role


def delete_group(ctx: Context, scim_id: str) -> AccessRole:
    """The IdP deleted the group: the role is retired, every membership ends, its history stays."""
    ctx.require(Permission.ACCESS_ADMIN)
    role = load_group(ctx, scim_id)
    return grants.retire_role(ctx, role.id, f"SCIM: group {role.name} deleted")

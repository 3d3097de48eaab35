"""Joiners, movers and leavers from the identity provider over SCIM 2.0 (RFC 7643, RFC 7644).

A SCIM User is an inventory Person, changed only through the inventory services,
so every change is audited and the access listeners run (a leaver's grants are
revoked at once). A SCIM Group is an access role; membership is a standing grant
of the role (see scim_groups below).

Mapping (the IdP's view -> the register):
  id                     the person id, as a string
  userName               idp_id: the person's identifier at the IdP (often the UPN); when it is
                         an e-mail address it is also the person's email, else the primary email is
  externalId             external_id, the HR id; when the IdP sends none the person gets
                         "scim:<random>", which is never shown back as an externalId
  name.formatted         full_name (or givenName + familyName, or displayName, when absent)
  emails                 email (one per person; the primary one is kept)
  title                  job_title
  active                 false -> leaver (end_date today); true for a leaver -> active again (rehire)
  enterprise department  department
  enterprise manager     manager_id (manager.value is the manager's SCIM id)

People are never deleted: DELETE makes the person a leaver and unlinks them from
the IdP (idp_id cleared). A leaver with no IdP link is out of the IdP's view (404),
as RFC 7644 §3.6 requires after a DELETE; a later POST for the same person (same
email, userName or externalId) is a rehire of that person, with their history.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Annotated, Any

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    Filter,
    Meta,
    Mutability,
    Patch,
    Path,
    Reference,
    Required,
    Resource,
    ResourceType,
    ResponseParameters,
    Returned,
    Schema,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import (
    Context as ScimCtx,
)
from sqlalchemy import ColumnElement, and_, func, not_, or_, select

from portcullis.core.context import Context, Principal
from portcullis.core.errors import Conflict, NotFound, PermissionDenied, PortcullisError
from portcullis.core.permissions import Permission
from portcullis.inventory import service as inventory
from portcullis.inventory.models import Person, PersonKind, PersonStatus
from portcullis.inventory.schemas import PersonIn

MEDIA_TYPE = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_RESULTS = 500
PLACEHOLDER_PREFIX = "scim:"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENTRA_HINT = " (Microsoft Entra sends this; set PORTCULLIS_SCIM_ENTRA_COMPAT=true to accept it)"

# The IdP's token carries identity.provision only; provisioning a person and their
# role memberships goes through services that check their own permissions, so the
# SCIM layer lends the token exactly those, and nothing else (the role must still
# hold them: only an admin does).
_IMPLIED = frozenset({Permission.INVENTORY_READ, Permission.INVENTORY_WRITE, Permission.ACCESS_ADMIN})


class ScimError(Exception):
    """An error answered in SCIM's error schema (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemas": [ERROR_URN], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            out["scimType"] = self.scim_type
        return out


def invalid(detail: str, scim_type: str = "invalidValue") -> ScimError:
    return ScimError(400, detail, scim_type)


def from_domain(exc: PortcullisError) -> ScimError:
    detail = str(exc).replace("\n  - ", "; ").replace("\n", "; ")
    if isinstance(exc, Conflict):
        return ScimError(409, detail, "uniqueness")
    if isinstance(exc, NotFound):
        return ScimError(404, detail)
    if isinstance(exc, PermissionDenied):
        return ScimError(403, detail)
    if exc.status == 401:
        return ScimError(401, detail)
    return invalid(detail)


def provisioning_principal(principal: Principal) -> Principal:
    """The principal SCIM acts as: the token's own, refused unless it may provision identities."""
    if not principal.can(Permission.IDENTITY_PROVISION):
        why = "" if principal.mfa else " (or the token was made without MFA)"
        raise ScimError(
            403, f"{principal.name} ({principal.role.value}) may not {Permission.IDENTITY_PROVISION.value}{why}"
        )
    scopes = None if principal.scopes is None else principal.scopes | _IMPLIED
    return replace(principal, via="scim", scopes=scopes)


# --- the resources as published (scim2-models) ----------------------------------------


# The register keeps what is published here. IdPs also send name.givenName and
# name.familyName (used to build the full name when name.formatted is absent) and
# emails.primary/type (the primary email is kept): accepted, not published, since
# they could not be returned as sent.


class Name(ComplexAttribute):
    formatted: Annotated[str | None, Required.true] = None


class Email(ComplexAttribute):
    value: Annotated[str | None, Required.true] = None


class Manager(ComplexAttribute):
    value: Annotated[str | None, Required.true, CaseExact.true] = None
    ref: Annotated[Reference["User"] | None, Required.false] = Field(  # noqa: UP037 -- scim2-models reads the name
        None, serialization_alias="$ref", validation_alias="$ref"
    )


class EnterpriseUser(Extension):
    __schema__ = URN(ENTERPRISE_URN)

    department: str | None = None
    manager: Manager | None = None


class User(Resource[EnterpriseUser]):
    __schema__ = URN(USER_URN)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    name: Annotated[Name | None, Required.true] = None
    title: str | None = None
    # Required: every person is either in employment or a leaver; an IdP that
    # omits it on creation gets an active joiner.
    active: Annotated[bool | None, Required.true] = None
    emails: Annotated[list[Email] | None, Required.true] = None


# The resource with its extension, as scim2-models composes it (mypy cannot see the indexing).
UserResource: type[User] = User[EnterpriseUser]  # type: ignore[misc]


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Required.true, CaseExact.true, Mutability.immutable] = None
    ref: Annotated[Reference["User"] | None, Mutability.immutable] = Field(  # noqa: UP037
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    # The member's name; what the IdP sends is ignored. Returned when asked for
    # (attributes=members.display): IdPs compare members with what they sent.
    display: Annotated[str | None, Mutability.read_only, Returned.request] = None


class Group(Resource[Any]):
    __schema__ = URN(GROUP_URN)

    display_name: Annotated[str | None, Required.true] = None
    members: list[GroupMember] | None = None


_DESCRIPTIONS = {
    USER_URN: ("User", "A person in the Portcullis register (inventory person)"),
    ENTERPRISE_URN: ("EnterpriseUser", "Department and manager of the person"),
    GROUP_URN: ("Group", "An access role; members hold its entitlements as standing grants"),
}


def _schema(model: type[Resource[Any]] | type[Extension], base: str) -> dict[str, Any]:
    schema: Schema = model.to_schema()
    name, description = _DESCRIPTIONS[str(schema.id)]
    schema.name, schema.description = name, description
    out = _dump(schema)
    out["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema.id}"}
    return out


def _dump(obj: Any, params: ResponseParameters[Any] | None = None) -> dict[str, Any]:
    dumped: dict[str, Any] = obj.model_dump(scim_ctx=ScimCtx.RESOURCE_QUERY_RESPONSE, response_parameters=params)
    return dumped


def schemas(base: str, groups: bool) -> list[dict[str, Any]]:
    out = [_schema(User, base), _schema(EnterpriseUser, base)]
    if groups:
        out.append(_schema(Group, base))
    return out


def resource_types(base: str, groups: bool) -> list[dict[str, Any]]:
    types = [ResourceType.from_resource(UserResource)]
    if groups:
        types.append(ResourceType.from_resource(Group))
    out = []
    for rt in types:
        rt.description = _DESCRIPTIONS[str(rt.schema_)][1]
        dumped = _dump(rt)
        dumped["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{rt.id}"}
        out.append(dumped)
    return out


def service_provider_config(base: str) -> dict[str, Any]:
    spc = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Portcullis API token",
                description="Authorization: Bearer <token>; the token's user needs identity.provision",
                primary=True,
            )
        ],
    )
    out = _dump(spc)
    out["meta"] = {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"}
    return out


def response_parameters(attributes: str | None, excluded: str | None) -> ResponseParameters[Any] | None:
    if not attributes and not excluded:
        return None
    try:
        return ResponseParameters(
            attributes=[Path(a.strip()) for a in (attributes or "").split(",") if a.strip()] or None,
            excluded_attributes=[Path(a.strip()) for a in (excluded or "").split(",") if a.strip()] or None,
        )
    except (PydanticValidationError, ValueError) as exc:
        raise invalid(f"attributes/excludedAttributes: {exc}", "invalidPath") from exc


# --- people as SCIM users ----------------------------------------------------------------


def _location(base: str, kind: str, obj_id: int) -> str:
    return f"{base}/{kind}/{obj_id}"


def is_placeholder(external_id: str) -> bool:
    return external_id.startswith(PLACEHOLDER_PREFIX)


def _visible() -> ColumnElement[bool]:
    # A person deleted at the IdP is a leaver with no IdP link (see the module docstring).
    return not_(and_(Person.status == PersonStatus.LEAVER.value, Person.idp_id.is_(None)))


def person_active(p: Person) -> bool:
    return p.status not in (PersonStatus.LEAVER.value, PersonStatus.SUSPENDED.value)


def user_resource(p: Person, base: str, params: ResponseParameters[Any] | None = None) -> dict[str, Any]:
    user = UserResource(
        id=str(p.id),
        external_id=None if is_placeholder(p.external_id) else p.external_id,
        user_name=p.idp_id or p.email,
        name=Name(formatted=p.full_name),
        title=p.job_title or None,
        active=person_active(p),
        emails=[Email(value=p.email)],
        meta=Meta(
            resource_type="User",
            created=p.created_at,
            last_modified=p.updated_at,
            location=_location(base, "Users", p.id),
        ),
    )
    if p.department or p.manager_id is not None:
        manager = None
        if p.manager_id is not None:
            manager = Manager(value=str(p.manager_id), ref=_location(base, "Users", p.manager_id))
        user[EnterpriseUser] = EnterpriseUser(department=p.department or None, manager=manager)
    return _dump(user, params)


@dataclass
class UserState:
    """The attributes Portcullis keeps, as the IdP sees them; PATCH edits this, then it is saved."""

    user_name: str | None = None
    external_id: str | None = None
    formatted: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    emails: list[dict[str, Any]] = field(default_factory=list)
    title: str | None = None
    active: bool | None = None
    department: str | None = None
    manager: str | None = None
    # Set when a request named the full name itself, so given/family names do not overwrite it.
    formatted_given: bool = False

    @classmethod
    def of(cls, p: Person) -> UserState:
        return cls(
            user_name=p.idp_id or p.email,
            external_id=None if is_placeholder(p.external_id) else p.external_id,
            formatted=p.full_name,
            emails=[{"value": p.email, "primary": True}],
            title=p.job_title or None,
            active=person_active(p),
            department=p.department or None,
            manager=None if p.manager_id is None else str(p.manager_id),
        )


def _key(d: dict[str, Any], name: str) -> Any:
    # Attribute names are case-insensitive (RFC 7643 §2.1).
    for k, v in d.items():
        if k.lower() == name.lower():
            return v
    return None


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise invalid(f"{where} must be a string, not {type(value).__name__}")
    return value.strip() or None


def _bool(value: Any, where: str, entra: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        if entra:
            return value.strip().lower() == "true"
        raise invalid(f"{where} must be a JSON boolean, not the string {value!r}{_ENTRA_HINT}")
    raise invalid(f"{where} must be a boolean")


def _emails(value: Any, entra: bool) -> list[dict[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"emails[{i}] must be an object with a value")
        address = _text(_key(item, "value"), f"emails[{i}].value")
        if address is None:
            raise invalid(f"emails[{i}].value is required")
        primary = _key(item, "primary")
        out.append(
            {
                "value": address,
                "primary": None if primary is None else _bool(primary, f"emails[{i}].primary", entra),
                "type": _key(item, "type"),
            }
        )
    return out


def _manager_id(value: Any, entra: bool, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return _text(_key(value, "value"), f"{where}.value")
    if isinstance(value, str) and entra:
        return value.strip() or None  # Entra sends the bare id
    raise invalid(f"{where} must be an object with a value (the manager's SCIM id){_ENTRA_HINT}")


def _set_name(state: UserState, value: Any, entra: bool, where: str = "name") -> None:
    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object")
    for sub in ("formatted", "givenName", "familyName"):
        raw = _key(value, sub)
        if raw is not None or any(k.lower() == sub.lower() for k in value):
            _set_user_attr(state, f"name.{sub}", raw, entra)


def _set_enterprise(state: UserState, value: Any, entra: bool) -> None:
    if not isinstance(value, dict):
        raise invalid(f"{ENTERPRISE_URN} must be an object")
    for k, v in value.items():
        _set_user_attr(state, f"{ENTERPRISE_URN}:{k}", v, entra)


# Attributes of the standard schemas that Portcullis does not keep: accepted and ignored,
# as IdPs send them whatever the published schema says (RFC 7644 §3.3 lets the server ignore them).
_IGNORED = {
    "schemas", "id", "meta", "nickname", "profileurl", "usertype", "preferredlanguage", "locale", "timezone",
    "password", "phonenumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles",
    "x509certificates", "employeenumber", "costcenter", "organization", "division",
    "name.middlename", "name.honorificprefix", "name.honorificsuffix", "manager.displayname",
}


def _split(path: str) -> tuple[str, str]:
    """(schema, attribute path in lower case) of a path that may carry its schema URN."""
    low = path.strip().lower()
    for urn in (ENTERPRISE_URN, USER_URN):
        if low == urn.lower():
            return urn, ""
        if low.startswith(urn.lower() + ":"):
            return urn, low[len(urn) + 1 :]
    return USER_URN, low


def _set_user_attr(state: UserState, path: str, value: Any, entra: bool) -> None:
    """Set one attribute (None removes it); `path` may be schema-qualified and dotted."""
    schema, attr = _split(path)
    if schema == ENTERPRISE_URN:
        if attr == "":
            if value is None:
                state.department, state.manager = None, None
            else:
                _set_enterprise(state, value, entra)
        elif attr == "department":
            state.department = _text(value, "department")
        elif attr == "manager":
            state.manager = _manager_id(value, entra, "manager")
        elif attr == "manager.value":
            state.manager = _text(value, "manager.value")
        elif attr in _IGNORED or attr in ("manager.$ref", "manager.ref"):
            return
        else:
            raise invalid(f"'{path}' is not an attribute of {ENTERPRISE_URN}", "invalidPath")
        return
    match attr:
        case "username":
            state.user_name = _text(value, "userName")
        case "externalid":
            state.external_id = _text(value, "externalId")
        case "name":
            if value is None:
                state.formatted = state.given_name = state.family_name = None
            else:
                _set_name(state, value, entra)
        case "name.formatted":
            state.formatted = _text(value, "name.formatted")
            state.formatted_given = True
        case "name.givenname":
            state.given_name = _text(value, "name.givenName")
        case "name.familyname":
            state.family_name = _text(value, "name.familyName")
        case "displayname":
            state.display_name = _text(value, "displayName")
        case "title":
            state.title = _text(value, "title")
        case "active":
            state.active = None if value is None else _bool(value, "active", entra)
        case "emails":
            state.emails = _emails(value, entra)
        case "emails.value":
            address = _text(value, "emails.value")
            state.emails = [{"value": address, "primary": True}] if address else []
        case "emails.primary" | "emails.type":
            return
        case _ if attr in _IGNORED or attr.split(".")[0] in _IGNORED:
            return
        case _:
            raise invalid(f"'{path}' is not an attribute Portcullis knows", "invalidPath")


def state_from_payload(payload: dict[str, Any], entra: bool) -> UserState:
    """A whole resource (POST, PUT): what it does not name is unassigned."""
    state = UserState()
    for k, v in payload.items():
        if k.lower() == ENTERPRISE_URN.lower():
            if v is not None:
                _set_enterprise(state, v, entra)
        elif k.lower() not in _IGNORED:
            _set_user_attr(state, k, v, entra)
    return state


def _full_name(state: UserState) -> str | None:
    if state.formatted and state.formatted_given:
        return state.formatted
    composed = " ".join(p for p in (state.given_name, state.family_name) if p)
    return composed or state.display_name or state.formatted


def _primary_email(state: UserState) -> str | None:
    if state.user_name and _EMAIL.match(state.user_name):
        return state.user_name
    for e in state.emails:
        if e.get("primary"):
            return str(e["value"])
    return str(state.emails[0]["value"]) if state.emails else None


@dataclass(frozen=True)
class Patch1:
    op: str
    path: str | None
    value: Any


_FILTERED = re.compile(r"^(?P<attr>[\w.:$-]+?)\[(?P<filter>[^\]]*)\](?:\.(?P<sub>[\w$]+))?$")


def parse_patch(body: Any, entra: bool) -> list[Patch1]:
    if not isinstance(body, dict):
        raise invalid("The body must be a PatchOp object", "invalidSyntax")
    if PATCH_URN not in (body.get("schemas") or []):
        raise invalid(f"schemas must contain {PATCH_URN}", "invalidSyntax")
    ops = _key(body, "Operations")
    if not isinstance(ops, list) or not ops:
        raise invalid("Operations must be a non-empty list", "invalidSyntax")
    out = []
    for i, raw in enumerate(ops):
        if not isinstance(raw, dict):
            raise invalid(f"Operations[{i}] must be an object", "invalidSyntax")
        op = _key(raw, "op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid(f"Operations[{i}].op must be add, replace or remove, not {op!r}", "invalidSyntax")
        if op != op.lower() and not entra:
            raise invalid(f"Operations[{i}].op must be lower case ('{op.lower()}'), not {op!r}{_ENTRA_HINT}")
        path = _key(raw, "path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise invalid(f"Operations[{i}].path must be a non-empty string", "invalidPath")
        value = _key(raw, "value")
        if op.lower() == "remove" and path is None:
            raise invalid(f"Operations[{i}]: remove needs a path", "noTarget")
        if op.lower() != "remove" and path is None and not isinstance(value, dict):
            raise invalid(f"Operations[{i}]: without a path, value must be an object of attributes")
        out.append(Patch1(op.lower(), path.strip() if path else None, value))
    return out


def _pathless_keys(value: dict[str, Any], entra: bool, i: int) -> Iterable[tuple[str, Any]]:
    for k, v in value.items():
        schema, attr = _split(k)
        dotted = "." in attr or (schema == ENTERPRISE_URN and attr != "") or (schema == USER_URN and k.lower() != attr)
        if dotted and not entra:
            raise invalid(
                f"Operations[{i}].value: key {k!r} is a path; without a path the value holds attributes"
                + _ENTRA_HINT,
                "invalidPath",
            )
        yield k, v


def apply_user_patch(state: UserState, ops: list[Patch1], entra: bool) -> UserState:
    for i, op in enumerate(ops):
        if op.path is None:
            for k, v in _pathless_keys(op.value, entra, i):
                _apply_one(state, op.op, k, v, entra)
        else:
            _apply_one(state, op.op, op.path, op.value, entra)
    return state


def _apply_one(state: UserState, op: str, path: str, value: Any, entra: bool) -> None:
    m = _FILTERED.match(path.strip())
    if m:
        # emails[type eq "work"].value and the like: a person has one email, so any
        # filter on emails designates it.
        if m.group("attr").lower() != "emails":
            raise invalid(f"'{path}': only emails may be filtered", "invalidPath")
        sub = (m.group("sub") or "").lower()
        if op == "remove":
            raise invalid("emails is required: a person keeps one email", "mutability")
        if sub in ("", "value"):
            address = _text(value if sub else _key(value, "value") if isinstance(value, dict) else value, path)
            if address:
                state.emails = [{"value": address, "primary": True}]
        return
    schema, attr = _split(path)
    if op == "remove":
        if (schema, attr) in ((USER_URN, "username"), (USER_URN, "emails"), (USER_URN, "name"),
                              (USER_URN, "name.formatted"), (USER_URN, "active")):
            raise invalid(f"'{path}' is required and cannot be removed", "mutability")
        _set_user_attr(state, path, None, entra)
        return
    if value is None:
        raise invalid(f"'{path}': {op} needs a value")
    if op == "add" and (schema, attr) == (USER_URN, "emails"):
        # add appends to a multi-valued attribute; a new primary takes over.
        added = _emails(value, entra)
        state.emails = [*added, *state.emails] if any(e.get("primary") for e in added) else [*state.emails, *added]
        return
    if (schema, attr) == (USER_URN, "name") and isinstance(value, dict):
        _set_name(state, value, entra)
        return
    if (schema, attr) == (ENTERPRISE_URN, "") and isinstance(value, dict):
        _set_enterprise(state, value, entra)
        return
    _set_user_attr(state, path, value, entra)


def _person_in(ctx: Context, state: UserState, current: Person | None) -> PersonIn:
    email = _primary_email(state)
    if not state.user_name:
        raise invalid("userName is required")
    if not email:
        raise invalid("userName is not an email address and no emails were given: a person needs an email")
    full_name = _full_name(state)
    if not full_name:
        raise invalid("name.formatted (or name.givenName and name.familyName) is required")
    manager_id: int | None = None
    if state.manager is not None:
        manager = _find_visible(ctx, state.manager)
        if manager is None:
            raise invalid(f"manager.value {state.manager!r} is not the id of a user")
        manager_id = manager.id
    today = ctx.now().date()
    status = current.status if current else PersonStatus.JOINER.value
    start: date | None = current.start_date if current else None
    end: date | None = current.end_date if current else None
    active = True if state.active is None else state.active
    if not active and status not in (PersonStatus.LEAVER.value, PersonStatus.SUSPENDED.value):
        status, end = PersonStatus.LEAVER.value, max(today, start) if start else today
    elif active and status in (PersonStatus.LEAVER.value, PersonStatus.SUSPENDED.value):
        if status == PersonStatus.LEAVER.value:
            start = today  # a rehire: a new employment starts
        status, end = PersonStatus.ACTIVE.value, None
    external_id = state.external_id or (
        current.external_id if current and is_placeholder(current.external_id) else None
    )
    try:
        return PersonIn(
            external_id=external_id or f"{PLACEHOLDER_PREFIX}{uuid.uuid4().hex}",
            email=email,
            full_name=full_name,
            kind=current.kind if current else PersonKind.EMPLOYEE.value,
            department=state.department or "",
            job_title=state.title or "",
            manager_id=manager_id,
            status=status,
            start_date=start,
            end_date=end,
            key_function_holder=current.key_function_holder if current else False,
            mfa_enrolled=current.mfa_enrolled if current else False,
            idp_id=state.user_name,
            badge_id=current.badge_id if current else None,
        )
    except PydanticValidationError as exc:
        names = {"email": "userName/emails", "full_name": "name", "job_title": "title", "external_id": "externalId"}
        problems = "; ".join(
            f"{names.get(str(e['loc'][0]), str(e['loc'][0])) if e['loc'] else 'user'}: {e['msg']}"
            for e in exc.errors()
        )
        raise invalid(f"The user cannot be saved: {problems}") from exc


def _find_visible(ctx: Context, scim_id: str) -> Person | None:
    if not scim_id.isdigit():
        return None
    return ctx.session.scalars(select(Person).where(Person.id == int(scim_id), _visible())).one_or_none()


def load_user(ctx: Context, scim_id: str) -> Person:
    ctx.require(Permission.INVENTORY_READ)
    person = _find_visible(ctx, scim_id)
    if person is None:
        raise ScimError(404, f"No user with id {scim_id!r}")
    return person


def _save(ctx: Context, data: PersonIn, person: Person | None) -> Person:
    try:
        if person is None:
            return inventory.create_person(ctx, data)
        return inventory.update_person(ctx, person.id, data)
    except PortcullisError as exc:
        if isinstance(exc, Conflict):
            fields = {"email": "userName/emails", "idp_id": "userName", "external_id": "externalId"}
            named = ", ".join(fields.get(e.field, e.field) for e in exc.errors)
            raise ScimError(409, f"{exc.detail} ({named} must be unique)", "uniqueness") from exc
        raise from_domain(exc) from exc


def _deleted_match(ctx: Context, data: PersonIn) -> Person | None:
    """A person the IdP deleted earlier, who this creation brings back (a rehire)."""
    conds = [func.lower(Person.email) == data.email.lower()]
    if not is_placeholder(data.external_id):
        conds.append(Person.external_id == data.external_id)
    hidden = and_(Person.status == PersonStatus.LEAVER.value, Person.idp_id.is_(None))
    return ctx.session.scalars(select(Person).where(hidden, or_(*conds)).order_by(Person.id).limit(1)).one_or_none()


def create_user(ctx: Context, payload: Any, entra: bool) -> Person:
    ctx.require(Permission.INVENTORY_WRITE)
    if not isinstance(payload, dict):
        raise invalid("The body must be a User object", "invalidSyntax")
    state = state_from_payload(payload, entra)
    data = _person_in(ctx, state, None)
    returning = _deleted_match(ctx, data)
    if returning is not None:
        state.active = True if state.active is None else state.active
        return _save(ctx, _person_in(ctx, state, returning), returning)
    return _save(ctx, data, None)


def replace_user(ctx: Context, scim_id: str, payload: Any, entra: bool) -> Person:
    ctx.require(Permission.INVENTORY_WRITE)
    person = load_user(ctx, scim_id)
    if not isinstance(payload, dict):
        raise invalid("The body must be a User object", "invalidSyntax")
    state = state_from_payload(payload, entra)
    if state.external_id is None and not is_placeholder(person.external_id):
        # externalId is the HR id, which HR owns; a PUT that leaves it out keeps it.
        state.external_id = person.external_id
    return _save(ctx, _person_in(ctx, state, person), person)


def patch_user(ctx: Context, scim_id: str, body: Any, entra: bool) -> Person:
    ctx.require(Permission.INVENTORY_WRITE)
    ops = parse_patch(body, entra)
    person = load_user(ctx, scim_id)
    state = apply_user_patch(UserState.of(person), ops, entra)
    return _save(ctx, _person_in(ctx, state, person), person)


def delete_user(ctx: Context, scim_id: str) -> Person:
    """The IdP deleted the user: a leaver, unlinked from the IdP; the person and their history stay."""
    ctx.require(Permission.INVENTORY_WRITE)
    person = load_user(ctx, scim_id)
    state = UserState.of(person)
    state.active = False
    data = _person_in(ctx, state, person).model_copy(update={"idp_id": None})
    return _save(ctx, data, person)


_EQ = re.compile(r'^\s*(?P<attr>[\w.:$-]+)\s+eq\s+(?P<value>"(?:[^"\\]|\\.)*"|true|false|\d+)\s*$', re.I)


def _user_filter(expr: str) -> ColumnElement[bool]:
    m = _EQ.match(expr)
    if not m:
        raise invalid(
            f"Unsupported filter {expr!r}: use 'userName eq \"...\"', 'externalId eq \"...\"', "
            "'id eq \"...\"', 'emails.value eq \"...\"' or 'active eq true|false'",
            "invalidFilter",
        )
    raw = m.group("value")
    value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
    _, attr = _split(m.group("attr"))
    if attr == "username":
        # The IdP id, or the email: an IdP switched on after HR imported people finds them this way.
        return or_(Person.idp_id == value, func.lower(Person.email) == value.lower())
    if attr == "externalid":
        return Person.external_id == value
    if attr == "id":
        return Person.id == int(value) if value.isdigit() else Person.id.is_(None)
    if attr in ("emails", "emails.value"):
        return func.lower(Person.email) == value.lower()
    if attr == "active":
        inactive = Person.status.in_((PersonStatus.LEAVER.value, PersonStatus.SUSPENDED.value))
        return not_(inactive) if value.lower() == "true" else inactive
    raise invalid(f"Filtering on {m.group('attr')!r} is not supported", "invalidFilter")


def list_users(
    ctx: Context, filter_expr: str | None, start_index: int, count: int
) -> tuple[list[Person], int]:
    ctx.require(Permission.INVENTORY_READ)
    stmt = select(Person).where(_visible())
    if filter_expr and filter_expr.strip():
        stmt = stmt.where(_user_filter(filter_expr))
    total = ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    if count <= 0:
        return [], total
    rows = ctx.session.scalars(stmt.order_by(Person.id).offset(start_index - 1).limit(count))
    return list(rows), total


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def paging(start_index: int | None, count: int | None) -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0; at most MAX_RESULTS."""
    start = 1 if start_index is None or start_index < 1 else start_index
    size = MAX_RESULTS if count is None else max(0, min(count, MAX_RESULTS))
    return start, size


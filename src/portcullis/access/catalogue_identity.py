"""Who a platform user is in the register: the person who requests and approves.

Access rules (nobody approves their own request; the owner approves access to a
critical asset) are about people, so a user acting in access governance must be
linked to the Person they are.
"""

from __future__ import annotations

from sqlalchemy import select

from portcullis.accounts.models import User
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, ErrorCollector, FieldError, PermissionDenied
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person, PersonKind, PersonStatus
from portcullis.ledger.service import record_change

NOT_LINKED = (
    "your platform user is not linked to a person in the register: an admin links it with "
    "`portcullis identities link`"
)


def acting_person(ctx: Context) -> Person:
    """The Person behind ctx.principal; PermissionDenied if the user is not linked."""
    user_id = ctx.principal.user_id
    person_id = None if user_id is None else ctx.session.scalar(select(User.person_id).where(User.id == user_id))
    person = None if person_id is None else ctx.session.get(Person, person_id)
    if person is None:
        raise PermissionDenied(NOT_LINKED)
    return person


def link_user_to_person(ctx: Context, user_id: int, person_id: int) -> None:
    ctx.require(Permission.USERS_MANAGE)
    errs = ErrorCollector()
    user = ctx.session.get(User, user_id)
    person = ctx.session.get(Person, person_id)
    if user is None:
        errs.add("user_id", f"no platform user with id {user_id}")
    if person is None:
        errs.add("person_id", f"no person with id {person_id}")
    errs.raise_if_any("The user cannot be linked")
    assert user is not None
    assert person is not None
    if user.person_id == person.id:
        return
    holder = ctx.session.scalars(select(User).where(User.person_id == person.id, User.id != user.id)).one_or_none()
    if holder is not None:
        raise Conflict(
            f"{person.email} is already linked to platform user {holder.email}",
            [FieldError("person_id", f"person {person.id} is already linked to user {holder.id}")],
        )
    old = ctx.session.get(Person, user.person_id) if user.person_id is not None else None
    before = {"person_id": user.person_id, "person_email": old.email if old else None}
    user.person_id = person.id
    ctx.session.flush()
    after = {"person_id": person.id, "person_email": person.email}
    record_change(ctx, "user.person_linked", "user", user.id, before, after, user_email=user.email)


def colleagues(ctx: Context, limit: int = 500) -> list[tuple[int, str, str]]:
    """(id, name, email) of the people one may ask access for: active and joining, not service accounts.

    Anyone who may request access may ask for a colleague (§19, §21: access is requested
    for the person who needs it), so this needs only ACCESS_REQUEST, and shows names and
    emails, nothing else of the register.
    """
    ctx.require(Permission.ACCESS_REQUEST)
    stmt = (
        select(Person.id, Person.full_name, Person.email)
        .where(
            Person.status.in_([PersonStatus.ACTIVE.value, PersonStatus.JOINER.value]),
            Person.kind != PersonKind.SERVICE_ACCOUNT.value,
        )
        .order_by(Person.full_name)
        .limit(limit)
    )
    return [(i, name, email) for i, name, email in ctx.session.execute(stmt)]

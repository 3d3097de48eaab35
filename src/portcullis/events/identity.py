"""Who an event's actor is: an account name, a badge or an identity-provider id, to a person.

The directory is read once per ingestion run (a few thousand people fit in a
dict) so resolving costs a dictionary lookup per event, not a query.
Resolution order, most explicit first:
- username: the source's own `accounts` map, then an account seen by
  reconciliation (target_account) that belongs to exactly one person, then a
  person whose identity-provider id is that name;
- badge: the source's `badges` map, then the person's badge id;
- idp: the person's identity-provider id, the source's `accounts` map, then the email.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.access.models import TargetAccount
from portcullis.events.parsers.base import ActorKind, config_error
from portcullis.inventory.models import Asset, Person, Zone


class Directory:
    def __init__(self, session: Session, config: Mapping[str, Any]) -> None:
        people = session.execute(select(Person.id, Person.external_id, Person.email, Person.idp_id, Person.badge_id))
        by_external: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.by_idp: dict[str, int] = {}
        self.by_badge: dict[str, int] = {}
        for pid, external_id, email, idp_id, badge_id in people:
            by_external[external_id] = pid
            self.by_email[email.lower()] = pid
            if idp_id:
                self.by_idp[idp_id] = pid
            if badge_id:
                self.by_badge[badge_id] = pid
        accounts: dict[str, set[int]] = {}
        for name, owner in session.execute(
            select(TargetAccount.account_name, TargetAccount.person_id).where(TargetAccount.person_id.is_not(None))
        ):
            if owner is not None:
                accounts.setdefault(name, set()).add(owner)
        self.by_account = {name: next(iter(ids)) for name, ids in accounts.items() if len(ids) == 1}
        # The source's own maps name people by external id; an unknown one is a configuration error.
        self.configured_accounts = _people_map(config.get("accounts", {}), by_external, "accounts")
        self.configured_badges = _people_map(config.get("badges", {}), by_external, "badges")
        self.asset_ids = {k: v for k, v in session.execute(select(Asset.external_id, Asset.id))}
        self.zone_ids = {k: v for k, v in session.execute(select(Zone.external_id, Zone.id))}
        self.hosts = {h: self.asset_id(ext, f"hosts.{h}") for h, ext in dict(config.get("hosts", {})).items()}

    def person(self, actor: str, kind: ActorKind) -> int | None:
        if not actor:
            return None
        if kind is ActorKind.USERNAME:
            return self.configured_accounts.get(actor) or self.by_account.get(actor) or self.by_idp.get(actor)
        if kind is ActorKind.BADGE:
            return self.configured_badges.get(actor) or self.by_badge.get(actor)
        if kind is ActorKind.IDP:
            return self.by_idp.get(actor) or self.configured_accounts.get(actor) or self.by_email.get(actor.lower())
        return None

    def asset_id(self, external_id: str, where: str) -> int:
        try:
            return self.asset_ids[external_id]
        except KeyError:
            raise config_error(where, f"no ICT asset with external id {external_id!r}") from None


def _people_map(raw: Any, by_external: Mapping[str, int], field: str) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise config_error(field, "must be a map of names to person external ids")
    out: dict[str, int] = {}
    for name, external_id in raw.items():
        pid = by_external.get(str(external_id))
        if pid is None:
            raise config_error(f"{field}.{name}", f"no person with external id {external_id!r}")
        out[str(name)] = pid
    return out

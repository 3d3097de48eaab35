"""Who is acting, and the unit of work they act in. Every service takes a Context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from portcullis.core.clock import Clock, SystemClock
from portcullis.core.errors import PermissionDenied
from portcullis.core.permissions import MFA_REQUIRED, Permission, Role, allowed


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    user_id: int | None = None
    via: str = "system"  # web, api, cli, system
    mfa: bool = False
    # An API token narrows what its user may do; None means the role's full set.
    scopes: frozenset[Permission] | None = None

    @classmethod
    def system(cls, purpose: str) -> Principal:
        return cls(name=f"system:{purpose}", role=Role.ADMIN, via="system", mfa=True)

    def can(self, permission: Permission) -> bool:
        if not allowed(self.role, permission):
            return False
        if self.scopes is not None and permission not in self.scopes:
            return False
        # A role that changes access must have passed MFA for anything beyond
        # looking after its own account (which is where MFA gets enrolled).
        return not (self.role in MFA_REQUIRED and not self.mfa and permission is not Permission.SELF)

    def as_actor(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role.value, "user_id": self.user_id, "via": self.via}


@dataclass
class Context:
    session: Session
    principal: Principal
    clock: Clock = field(default_factory=SystemClock)
    # portcullis.ledger.checkpoints.Autosign: who signs checkpoints and how
    # often; typed loosely because core sits below the ledger. None: no
    # automatic checkpoints in this unit of work.
    autosign: Any = None

    def require(self, permission: Permission) -> None:
        if not self.principal.can(permission):
            why = ""
            if (
                allowed(self.principal.role, permission)
                and self.principal.role in MFA_REQUIRED
                and not self.principal.mfa
            ):
                why = " without MFA; complete TOTP enrolment or log in with a code"
            raise PermissionDenied(
                f"{self.principal.name} ({self.principal.role.value}) may not {permission.value}{why}"
            )

    def now(self) -> datetime:
        return self.clock.now()

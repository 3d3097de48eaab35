"""Helpers that put real users and tokens in the database through the services."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp

from portcullis.accounts import service
from portcullis.accounts.models import User
from portcullis.core.context import Context, Principal
from portcullis.core.permissions import PERMISSIONS, Role
from portcullis.core.runtime import Runtime

PASSWORD = "correct horse battery staple"


@dataclass
class Made:
    user: User
    principal: Principal
    token: str
    totp: pyotp.TOTP | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(rt: Runtime, role: Role, email: str | None = None, enrol_mfa: bool = True) -> Made:
    email = email or f"{role.value}@example.eu"
    with rt.work(Principal.system("tests")) as ctx:
        user = service.create_user(ctx, email, role.value.replace("_", " ").title(), role.value, PASSWORD)
    totp = None
    if enrol_mfa:
        with rt.work(service.principal_for(user, "web", False)) as ctx:
            enrolment = service.begin_totp_enrolment(ctx)
            totp = pyotp.TOTP(enrolment.secret)
            service.confirm_totp_enrolment(ctx, totp.at(rt.clock.now()))
    principal = service.principal_for(user, "api", enrol_mfa)
    with rt.work(principal) as ctx:
        _, token = service.create_api_token(ctx, "test", [p.value for p in PERMISSIONS[role]], 30)
    return Made(user, principal, token, totp)


def ctx_for(rt: Runtime, made: Made) -> Context:
    """For reading in tests; callers that write use rt.work(made.principal)."""
    return Context(rt.factory(), made.principal, rt.clock)

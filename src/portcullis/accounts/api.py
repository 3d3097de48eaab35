"""REST routes for platform users and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from portcullis.accounts import service
from portcullis.accounts.deps import Actor, require
from portcullis.core.permissions import Permission

router = APIRouter(tags=["accounts"])


class UserOut(BaseModel):
    id: int
    email: str
    full_name: str
    role: str
    active: bool
    mfa_enrolled: bool
    created_at: datetime


class UserIn(BaseModel):
    email: str
    full_name: str
    role: str
    password: str = Field(min_length=1, repr=False)


class UserPatch(BaseModel):
    role: str | None = None
    active: bool | None = None


class TokenIn(BaseModel):
    name: str
    scopes: list[str]
    days: int = 90


class TokenOut(BaseModel):
    id: int
    name: str
    lookup: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its hash is stored")


def _user(u: Any) -> UserOut:
    return UserOut.model_validate(service.user_view(u))


@router.get("/me", response_model=UserOut)
def me(actor: Annotated[Actor, Depends(require(Permission.SELF))]) -> UserOut:
    with actor.work() as ctx:
        return _user(service.get_user(ctx.session, actor.principal.user_id or 0))


@router.get("/users", response_model=list[UserOut])
def list_users(actor: Annotated[Actor, Depends(require(Permission.USERS_READ))]) -> list[UserOut]:
    with actor.work() as ctx:
        return [_user(u) for u in service.list_users(ctx)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, actor: Annotated[Actor, Depends(require(Permission.USERS_MANAGE))]) -> UserOut:
    with actor.work() as ctx:
        return _user(service.create_user(ctx, body.email, body.full_name, body.role, body.password))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(
    user_id: int, body: UserPatch, actor: Annotated[Actor, Depends(require(Permission.USERS_MANAGE))]
) -> UserOut:
    with actor.work() as ctx:
        return _user(service.update_user(ctx, user_id, role=body.role, active=body.active))


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(actor: Annotated[Actor, Depends(require(Permission.SELF))]) -> list[TokenOut]:
    with actor.work() as ctx:
        return [TokenOut.model_validate(service.token_view(t)) for t in service.list_api_tokens(ctx)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, actor: Annotated[Actor, Depends(require(Permission.SELF))]) -> TokenCreated:
    with actor.work() as ctx:
        tok, plain = service.create_api_token(ctx, body.name, body.scopes, body.days)
        return TokenCreated(**service.token_view(tok), token=plain)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: int, actor: Annotated[Actor, Depends(require(Permission.SELF))]) -> TokenOut:
    with actor.work() as ctx:
        return TokenOut.model_validate(service.token_view(service.revoke_api_token(ctx, token_id)))

"""Fifty approvers deciding one request at once make exactly one grant (PostgreSQL, real threads)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from portcullis.access import catalogue, requests
from portcullis.access.models import AccessRequest, Approval, Grant
from portcullis.access.schemas import DecisionIn, EntitlementIn, RequestIn
from portcullis.accounts import service as accounts
from portcullis.core.context import Principal
from portcullis.core.errors import Conflict
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import PersonIn
from tests.access.workflow_world import JUSTIFICATION, SYSTEM, World, build_world, records

APPROVERS = 50


def _officers(rt: Runtime, n: int) -> list[Principal]:
    principals = []
    with rt.work(SYSTEM) as ctx:
        for i in range(n):
            person = inventory.create_person(
                ctx,
                PersonIn(
                    external_id=f"HR-SO-{i}",
                    email=f"so{i}@kestrel.example.eu",
                    full_name=f"Officer {i}",
                    status="active",
                    start_date=date(2024, 1, 1),
                ),
            )
            user = accounts.create_user(ctx, person.email, person.full_name, Role.SECURITY_OFFICER.value, "x" * 16)
            catalogue.link_user_to_person(ctx, user.id, person.id)
            principals.append(accounts.principal_for(user, "api", True))
    return principals


def _race(rt: Runtime, principals: list[Principal], request_id: int) -> list[object]:
    barrier = threading.Barrier(len(principals))
    outcomes: list[object] = [None] * len(principals)

    def approve(i: int) -> None:
        barrier.wait()
        try:
            with rt.work(principals[i]) as ctx:
                outcomes[i] = requests.decide(ctx, request_id, DecisionIn(approve=True)).status
        except Exception as exc:  # every outcome is checked below
            outcomes[i] = exc

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(len(principals))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def _setup(rt: Runtime, min_approvals: int) -> tuple[World, int, list[Principal]]:
    w = build_world(rt)
    with rt.work(SYSTEM) as ctx:
        ent = catalogue.create_entitlement(
            ctx,
            EntitlementIn(
                key="vault-read",
                name="Read the vault",
                asset_id=w.asset_id,
                approvers=["security_officer"],
                min_approvals=min_approvals,
            ),
        )
    with rt.work(w.p("ana")) as ctx:
        rid = requests.request_access(
            ctx, RequestIn(subject_id=w.people["ana"], entitlement_id=ent.id, justification=JUSTIFICATION)
        ).id
    return w, rid, _officers(rt, APPROVERS)


def _totals(rt: Runtime, rid: int) -> tuple[int, int, str]:
    with rt.session() as s:
        grants = s.scalar(select(func.count()).select_from(Grant).where(Grant.request_id == rid)) or 0
        approvals = s.scalar(select(func.count()).select_from(Approval).where(Approval.request_id == rid)) or 0
        status = s.scalar(select(AccessRequest.status).where(AccessRequest.id == rid)) or ""
    return grants, approvals, status


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_fifty_concurrent_approvals_make_one_grant(rt: Runtime) -> None:
    _, rid, officers = _setup(rt, 1)
    outcomes = _race(rt, officers, rid)
    wins = [o for o in outcomes if o == "approved"]
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(wins) == 1, Counter(type(o).__name__ if isinstance(o, Exception) else o for o in outcomes)
    assert len(losers) == APPROVERS - 1
    assert all("already approved" in str(e) or "meanwhile" in str(e) for e in losers)
    assert _totals(rt, rid) == (1, 1, "approved")
    assert [r["object_id"] for r in records(rt, "request.approved")] == [str(rid)]
    assert len(records(rt, "grant.created")) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_approvals_needing_two_stop_at_two(rt: Runtime) -> None:
    _, rid, officers = _setup(rt, 2)
    outcomes = _race(rt, officers, rid)
    counts = Counter(o if isinstance(o, str) else type(o).__name__ for o in outcomes)
    # serialised on the request row: one approval leaves it pending, the next approves it, the rest are late
    assert counts == {"pending": 1, "approved": 1, "Conflict": APPROVERS - 2}
    assert _totals(rt, rid) == (1, 2, "approved")
    assert len(records(rt, "request.approved")) == 1

"""Findings: idempotent while open, resolved by hand or when the check no longer finds them, all recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portcullis.access import findings
from portcullis.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portcullis.core.runtime import Runtime
from tests.access.workflow_world import SYSTEM, World, actions, build_world, records
from tests.conftest import START


@pytest.fixture
def w(rt: Runtime) -> World:
    return build_world(rt)


def _open(rt: Runtime, key: str, **kw: object) -> int:
    fields: dict[str, object] = {"kind": key.split(":")[0], "severity": "medium", "detail": f"detail of {key}"}
    fields.update(kw)
    with rt.work(SYSTEM) as ctx:
        return findings.open_finding(ctx, key=key, **fields).id  # type: ignore[arg-type]


def test_open_is_idempotent_while_open(w: World) -> None:
    first = _open(w.rt, "orphan:account:7", owner_id=w.people["sofia"], due_days=3)
    again = _open(w.rt, "orphan:account:7", detail="seen again")
    assert again == first
    assert actions(w.rt, "finding") == ["finding.opened"]
    [f] = w.open_findings().values()
    assert (f.owner_id, f.due_on, f.detail) == (
        w.people["sofia"],
        START + timedelta(days=3),
        "detail of orphan:account:7",
    )
    with w.rt.work(w.p("sofia")) as ctx:
        findings.resolve_finding(ctx, first, "account disabled")
    reopened = _open(w.rt, "orphan:account:7")
    assert reopened != first
    assert actions(w.rt, "finding") == ["finding.opened", "finding.resolved", "finding.opened"]


def test_resolve_by_hand(w: World) -> None:
    fid = _open(w.rt, "orphan:account:1")
    with w.rt.work(w.p("max")) as ctx, pytest.raises(PermissionDenied):
        findings.resolve_finding(ctx, fid, "not mine to close")
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(ValidationFailed) as exc:
        findings.resolve_finding(ctx, fid, " ")
    assert exc.value.errors[0].field == "resolution"
    with w.rt.work(w.p("sofia")) as ctx:
        f = findings.resolve_finding(ctx, fid, "account removed from LDAP")
        assert (f.status, f.resolved_at, f.resolution) == ("resolved", START, "account removed from LDAP")
    [rec] = records(w.rt, "finding.resolved")
    assert rec["changes"]["resolution"] == ["", "account removed from LDAP"]
    assert rec["actor"]["name"] == "sofia@kestrel.example.eu"
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="already resolved"):
        findings.resolve_finding(ctx, fid, "twice")
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(NotFound):
        findings.resolve_finding(ctx, 999_999, "x")


def test_resolve_missing_closes_only_its_own_prefix(w: World) -> None:
    keep = _open(w.rt, "orphan:account:1")
    gone = _open(w.rt, "orphan:account:2")
    other = _open(w.rt, "orphan_group:account:2")  # shares the start of the word, not the prefix
    with w.rt.work(SYSTEM) as ctx:
        assert findings.resolve_missing(ctx, "orphan:account:", {"orphan:account:1"}) == 1
    still = {f.id for f in w.open_findings().values()}
    assert still == {keep, other}
    assert gone not in still
    [rec] = records(w.rt, "finding.resolved")
    assert rec["object_id"] == str(gone)
    assert rec["changes"]["resolution"][1] == findings.CONDITION_GONE


def test_resolve_missing_treats_like_wildcards_literally(w: World) -> None:
    _open(w.rt, "a_b:grant:1")
    _open(w.rt, "axb:grant:1")
    with w.rt.work(SYSTEM) as ctx:
        assert findings.resolve_missing(ctx, "a_b:", set()) == 1
    assert set(w.open_findings()) == {"axb:grant:1"}


def test_list_findings_filters(w: World) -> None:
    a = _open(w.rt, "orphan:account:1", owner_id=w.people["sofia"])
    b = _open(w.rt, "mover_review:grant:1", person_id=w.people["ana"])
    with w.rt.work(w.p("sofia")) as ctx:
        findings.resolve_finding(ctx, b, "reviewed")
    with w.rt.work(w.p("olga")) as ctx:  # approvers read findings

        def ids(**kw: object) -> list[int]:
            return [f.id for f in findings.list_findings(ctx, **kw)[0]]  # type: ignore[arg-type]

        assert ids() == [a]
        assert ids(status=None) == [a, b]
        assert ids(status="resolved") == [b]
        assert ids(kind="orphan") == [a]
        assert ids(owner_id=w.people["sofia"]) == [a]
        assert ids(status=None, person_id=w.people["ana"]) == [b]
        view = findings.finding_view(findings.list_findings(ctx)[0][0])
    assert view["owner_email"] == "sofia@kestrel.example.eu"
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(PermissionDenied):
        findings.list_findings(ctx)

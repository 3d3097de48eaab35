"""Reconciliation against a real OpenLDAP server (slapd started per test), on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portcullis.access import grants
from portcullis.access.ldap_source import DirectoryUnavailable, LdapQuery, read_accounts
from portcullis.access.models import Finding, TargetAccount
from portcullis.access.reconcile import reconcile_ldap
from portcullis.core.clock import FrozenClock
from portcullis.core.errors import PermissionDenied, ValidationFailed
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.ledger.models import LedgerRecord
from tests.access.slapd import (
    GROUPS,
    PEOPLE,
    Slapd,
    group_ldif,
    posix_group_ldif,
    slapd_memberof_server,  # noqa: F401 - the fixture
    slapd_server,  # noqa: F401 - the fixture
    user_dn,
    user_ldif,
)
from tests.access.test_reconcile_service import ADMIN, EXPECTED, build_world, count, ledger, open_findings
from tests.factories import make_user

SYSTEM = "corp-ldap"


def load_directory(server: Slapd) -> None:
    """The same accounts as the CSV export of the service tests, as a directory holds them."""
    server.add(
        "\n".join(
            [
                user_ldif("alice", "alice@aurora.example", "E1"),
                user_ldif("bob", "bob@aurora.example", "E2"),
                user_ldif("carol", "carol@aurora.example", "E3"),
                user_ldif("dave", "dave@aurora.example", "E4"),
                user_ldif("ghost", "ghost@contractor.example", None),
                user_ldif("esmith", "e.smith@legacy.example", "E5"),
                user_ldif("frank", "frank@aurora.example", "E6", locked=True),
                group_ldif("trading-ops", ["alice", "ghost", "frank"]),
                group_ldif("dba-admins", ["bob"]),
                group_ldif("wiki", ["bob", "carol", "esmith"]),
                posix_group_ldif("ops", 5000, ["esmith"]),
            ]
        )
    )


def query(server: Slapd, **kw: object) -> LdapQuery:
    return LdapQuery(url=server.url, bind_dn=server.bind_dn, password=server.password, base=server.base, **kw)  # type: ignore[arg-type]


# --- reading the directory ------------------------------------------------------------


def test_reads_accounts_groups_and_lock_state(slapd: Slapd) -> None:
    load_directory(slapd)
    read = read_accounts(query(slapd), SYSTEM)
    got = {r.account_name: (r.email, r.employee_id, r.active, set(r.groups)) for r in read.records}
    assert got == {
        "alice": ("alice@aurora.example", "E1", True, {"trading-ops"}),
        "bob": ("bob@aurora.example", "E2", True, {"dba-admins", "wiki"}),
        "carol": ("carol@aurora.example", "E3", True, {"wiki"}),
        "dave": ("dave@aurora.example", "E4", True, set()),
        "ghost": ("ghost@contractor.example", None, True, {"trading-ops"}),
        "esmith": ("e.smith@legacy.example", "E5", True, {"wiki", "ops"}),  # ops: posixGroup memberUid
        "frank": ("frank@aurora.example", "E6", False, {"trading-ops"}),  # pwdAccountLockedTime
    }
    assert {r.dn for r in read.records} >= {user_dn("alice"), user_dn("frank")}
    assert read.skipped == []


def test_memberof_is_used_when_the_directory_keeps_it(slapd_memberof: Slapd, slapd: Slapd) -> None:
    for server in (slapd_memberof, slapd):
        load_directory(server)
    # Searching for groups where there are none: only memberOf can tell.
    where = {"group_base": PEOPLE}
    with_overlay = {
        r.account_name: set(r.groups) for r in read_accounts(query(slapd_memberof, **where), SYSTEM).records
    }
    without = {r.account_name: set(r.groups) for r in read_accounts(query(slapd, **where), SYSTEM).records}
    assert with_overlay["bob"] == {"dba-admins", "wiki"}
    assert with_overlay["esmith"] == {"wiki"}  # memberOf knows no posixGroup
    assert without["bob"] == set()


def test_filters_and_attributes_are_configurable(slapd: Slapd) -> None:
    load_directory(slapd)
    q = query(slapd, user_filter="(&(objectClass=inetOrgPerson)(employeeNumber=*))", group_base=GROUPS)
    names = {r.account_name for r in read_accounts(q, SYSTEM).records}
    assert names == {"alice", "bob", "carol", "dave", "esmith", "frank"}  # ghost has no employee number
    q = query(slapd, account_attribute="cn", employee_id_attribute="uid", idp_id_attribute="entryUUID")
    records = {r.account_name: r for r in read_accounts(q, SYSTEM).records}
    assert records["Alice"].employee_id == "alice"
    assert records["Alice"].idp_id is not None
    assert len(records["Alice"].idp_id) == 36  # a UUID


def test_wrong_password_is_refused_without_showing_it(slapd: Slapd) -> None:
    wrong = "not-the-Password-93"
    with pytest.raises(ValidationFailed) as exc:
        read_accounts(LdapQuery(url=slapd.url, bind_dn=slapd.bind_dn, password=wrong, base=slapd.base), SYSTEM)
    assert exc.value.errors[0].field == "bind_dn"
    assert "invalidCredentials" in str(exc.value)
    assert wrong not in str(exc.value)
    assert wrong not in repr(LdapQuery(url=slapd.url, bind_dn="x", password=wrong, base="y"))


def test_bad_filter_base_and_url_name_the_field(slapd: Slapd) -> None:
    with pytest.raises(ValidationFailed) as exc:
        read_accounts(query(slapd, user_filter="(objectClass=person"), SYSTEM)
    assert exc.value.errors[0].field == "user_filter"
    with pytest.raises(ValidationFailed) as exc:
        read_accounts(query(slapd, group_filter="cn=*)("), SYSTEM)
    assert exc.value.errors[0].field == "group_filter"
    with pytest.raises(ValidationFailed) as exc:
        read_accounts(
            LdapQuery(
                url=slapd.url, bind_dn=slapd.bind_dn, password=slapd.password, base="ou=nowhere,dc=aurora,dc=example"
            ),
            SYSTEM,
        )
    assert exc.value.errors[0].field == "base"
    with pytest.raises(ValidationFailed) as exc:
        read_accounts(LdapQuery(url="http://127.0.0.1/", base="dc=x"), SYSTEM)
    assert exc.value.errors[0].field == "url"


def test_unreachable_directory(slapd: Slapd) -> None:
    slapd.process.terminate()
    slapd.process.wait(timeout=10)
    with pytest.raises(DirectoryUnavailable) as exc:
        read_accounts(query(slapd, timeout=3), SYSTEM)
    assert exc.value.status == 502
    assert slapd.password not in str(exc.value)


def test_start_tls_refused_by_a_directory_without_tls(slapd: Slapd) -> None:
    # This slapd has no certificate: asking for StartTLS must fail, never fall back to plain text.
    with pytest.raises(DirectoryUnavailable):
        read_accounts(query(slapd, start_tls=True, timeout=3), SYSTEM)


# --- reconciling ------------------------------------------------------------------------


def run(rt: Runtime, q: LdapQuery) -> dict[str, object]:
    with rt.work(ADMIN) as ctx:
        return reconcile_ldap(ctx, q, SYSTEM).as_dict()


def test_ldap_reconciliation_finds_fixes_and_never_records_the_password(
    rt: Runtime, clock: FrozenClock, slapd: Slapd
) -> None:
    w = build_world(rt, clock, SYSTEM)
    load_directory(slapd)
    q = query(slapd)
    report = run(rt, q)
    assert set(open_findings(rt)) == EXPECTED
    assert report["orphans"] == 1
    with rt.session() as s:
        ghost = s.scalars(select(TargetAccount).where(TargetAccount.account_name == "ghost")).one()
        assert ghost.person_id is None
        assert ghost.attributes["dn"] == user_dn("ghost")

    # A second run changes nothing.
    before = count(rt, Finding)
    again = run(rt, q)
    assert (again["findings_opened"], again["findings_resolved"], again["created"]) == (0, 0, 0)
    assert count(rt, Finding) == before == 4

    # Fix every cause in the directory and the register; the next run closes them all.
    with rt.work(ADMIN) as ctx:
        grants.grant_role(ctx, w.people["bob"], w.dba_role, "on call DBA")
    slapd.delete(user_dn("ghost"))
    slapd.add_member("trading-ops", "dave")
    slapd.lock("carol")
    fixed = run(rt, q)
    assert fixed["findings_resolved"] == 4
    assert fixed["deactivated"] == 1
    assert open_findings(rt) == {}

    runs = ledger(rt, "reconciliation.run")
    assert len(runs) == 3
    assert runs[0]["source"]["url"] == slapd.url
    assert runs[0]["source"]["bind_dn"] == slapd.bind_dn
    assert "password" not in runs[0]["source"]
    with rt.session() as s:
        payloads = [bytes(p) for p in s.scalars(select(LedgerRecord.payload))]
    assert payloads
    assert not [p for p in payloads if slapd.password.encode() in p]


def test_ldap_reconciliation_needs_access_admin_before_connecting(
    rt: Runtime, clock: FrozenClock, slapd: Slapd
) -> None:
    load_directory(slapd)
    auditor = make_user(rt, Role.AUDITOR)
    with pytest.raises(PermissionDenied), rt.work(auditor.principal) as ctx:
        reconcile_ldap(ctx, query(slapd), SYSTEM)
    assert count(rt, TargetAccount) == 0
    # A directory that refuses the bind leaves the database as it was.
    ledger_before = count(rt, LedgerRecord)
    bad = LdapQuery(url=slapd.url, bind_dn=slapd.bind_dn, password="wrong-Password-1", base=slapd.base)
    with pytest.raises(ValidationFailed), rt.work(ADMIN) as ctx:
        reconcile_ldap(ctx, bad, SYSTEM)
    assert count(rt, TargetAccount) == 0
    assert count(rt, LedgerRecord) == ledger_before


def test_slapd_fixture_really_serves(slapd: Slapd) -> None:
    # The fixture's own tools see what it loaded: guards against a test passing on an empty directory.
    load_directory(slapd)
    out = slapd.search("(uid=ghost)", "mail")
    assert "ghost@contractor.example" in out
    assert slapd.search("(uid=nobody)", "mail").strip() == ""
